/* gorp pretrain CONFIG.ini [--set section.key=value]...: trains the small base model of the
 * synthetic suite on its pretraining mix (language modelling plus option-reading instruction
 * examples, docs/SYNTHETIC.md) with AdamW, linear warm-up and cosine decay, and writes it to
 * pretrain.out. A base made with the same pretraining config is reused (the key in OUT.key).
 * At the end it reports how often the base answers with an option of a fresh, never-seen list. */
#include "gorp/cl.h"
#include "gorp/cmd.h"
#include "gorp/config_dist.h"
#include "gorp/dist.h"
#include "gorp/err.h"
#include "gorp/fsutil.h"
#include "gorp/metrics.h"
#include "gorp/modelfile.h"
#include "gorp/out.h"
#include "gorp/proc.h"
#include "gorp/synth.h"
#include "gorp/trainer.h"

#include <libgen.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Examples far beyond any pretraining step: the held-out check never saw them. */
#define HELD_OUT_BASE (1ULL << 40)

/* The hash of what the base model depends on (config.h CONFIG_PRETRAIN) and the suite's version
 * (a changed mix or vocabulary makes a new base). */
static uint64_t pretrain_key(const gorp_config *c) {
  return (config_scope_hash(c, CONFIG_PRETRAIN) ^ (uint64_t)SYNTH_VERSION) * 0x100000001b3ULL;
}

static int cached(const char *out, uint64_t key) {
  char path[4200];
  snprintf(path, sizeof(path), "%s.key", out);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  unsigned long long stored = 0;
  const int ok = fscanf(f, "%llx", &stored) == 1 && stored == key;
  fclose(f);
  return ok && access(out, R_OK) == 0;
}

/* [BOS] + prompt + " " + answer + [EOS], loss on the answer and EOS (prompt.c's layout). */
static int encode_example(const tokenizer *tok, const synth_example *e, int *tokens, int *targets,
                          int *n, int cap) {
  *n = 0;
  tokens[(*n)++] = tok->bos_id;
  GORP_CALL(tokenizer_encode(tok, e->prompt, tokens, n, cap - 1));
  const int answer_start = *n;
  char *answer = malloc(strlen(e->answer) + 2);
  if (!answer) GORP_ERR(GORP_EMEM, "out of memory encoding a pretraining example");
  snprintf(answer, strlen(e->answer) + 2, " %s", e->answer);
  const int rc = tokenizer_encode_cont(tok, answer, -1, tokens, n, cap - 1);
  free(answer);
  GORP_CALL(rc);
  tokens[(*n)++] = tok->eos_id;
  for (int i = 0; i < *n; i++)
    targets[i] = i + 1 >= answer_start && i + 1 < *n ? tokens[i + 1] : -1;
  return GORP_OK;
}

/* Linear warm-up to lr, then cosine decay to lr x min_lr_ratio at the last step. */
static float schedule(const gorp_config *c, int step) {
  const float lr = c->pretrain.lr;
  if (step < c->pretrain.warmup) return lr * (float)(step + 1) / (float)c->pretrain.warmup;
  const int span = c->pretrain.steps - c->pretrain.warmup;
  const double p = span > 1 ? (double)(step - c->pretrain.warmup) / (span - 1) : 1.0;
  const double lo = c->pretrain.min_lr_ratio;
  return (float)(lr * (lo + (1.0 - lo) * 0.5 * (1.0 + cos(M_PI * p))));
}

/* Greedy answers to n held-out option-reading examples: the share inside the listed options and
 * the share naming the right concept. */
static int held_out_check(model *m, const tokenizer *tok, uint64_t seed, int n, double *in_list,
                          double *exact) {
  const int cap = m->cfg.max_seq, max_new = 8;
  int *tokens, *targets, *out;
  GORP_ALLOC(tokens, cap, "held-out prompt");
  GORP_ALLOC(targets, cap, "held-out targets");
  GORP_ALLOC(out, max_new, "held-out answer");
  int hits = 0, listed = 0, seen = 0, stop[MODEL_MAX_EOS + 1], n_stop;
  model_stop_ids(m, &tok->eos_id, 1, stop, &n_stop);
  for (uint64_t i = 0; seen < n; i++) {
    synth_example e;
    GORP_CALL(synth_pretrain_example(&e, seed, HELD_OUT_BASE + i));
    if (e.kind != SYNTH_EX_OPTION) {
      synth_example_free(&e);
      continue;
    }
    int len = 0, n_out = 0;
    tokens[len++] = tok->bos_id;
    GORP_CALL(tokenizer_encode(tok, e.prompt, tokens, &len, cap - max_new));
    const int *const prompts[1] = {tokens};
    GORP_CALL(model_generate(m, prompts, &len, 1, max_new, stop, n_stop, out, &n_out));
    char *pred;
    GORP_CALL(tokenizer_decode(tok, out, n_out, &pred));
    hits += metrics_exact_match(pred, e.answer);
    /* the options are the comma-separated names after "Option: " up to the line's end */
    const char *opt = strstr(e.prompt, "Option: ");
    if (opt) {
      char *line = strndup(opt + 8, strcspn(opt + 8, "\n"));
      char *names[64];
      int k = 0;
      for (char *tokp = strtok(line, ","); tokp && k < 64; tokp = strtok(NULL, ","))
        names[k++] = tokp;
      listed += metrics_in_list(pred, names, k);
      free(line);
    }
    free(pred);
    synth_example_free(&e);
    seen++;
  }
  *in_list = 100.0 * listed / n;
  *exact = 100.0 * hits / n;
  free(tokens);
  free(targets);
  free(out);
  return GORP_OK;
}

static int pretrain(const gorp_config *c) {
  dist d;
  GORP_CALL(config_check_same_on_ranks(c));
  GORP_CALL(dist_init(&d, c->parallel.tp, c->parallel.dp));
  if (strcmp(c->data.format, "synthetic"))
    GORP_ERR(GORP_EINPUT, "gorp pretrain trains on the synthetic suite's mix: set data.format = "
                          "synthetic");
  const uint64_t key = pretrain_key(c);
  if (cached(c->pretrain.out, key)) {
    out_printf("gorp pretrain: %s is up to date (same pretraining config); reusing it\n",
               c->pretrain.out);
    return GORP_OK;
  }
  char *dir_copy = strdup(c->pretrain.out);
  if (!dir_copy) GORP_ERR(GORP_EMEM, "out of memory");
  char dir[4096];
  snprintf(dir, sizeof(dir), "%s", dirname(dir_copy));
  free(dir_copy);
  if (d.rank == 0) GORP_CALL(fs_mkdirs(dir));
  GORP_CALL(dist_barrier(&d));
  tokenizer tok;
  GORP_CALL(cl_open_tokenizer(&tok, c, &d, dir));
  model_config arch = c->model.arch;
  arch.vocab_size = tok.vocab_size;
  model m;
  GORP_CALL(model_create_tp(&m, &arch, &d));
  model_init_random(&m, c->run.seed, c->model.init_std, c->model.embed_init_std);
  trainer tr;
  GORP_CALL(trainer_create(&tr, &m, c, "seqft", 1, &d)); /* every weight trains */
  const task_train tt = {.epochs = 1, .batch_size = c->pretrain.batch_size, .lr = c->pretrain.lr};
  GORP_CALL(trainer_begin_task(&tr, 0, &tt));
  const int B = c->pretrain.batch_size, cap = arch.max_seq;
  int *tokens, *targets, *lens, *one_tok, *one_tgt;
  int64_t *ids;
  float *weights;
  GORP_ALLOC(weights, (size_t)B * cap, "pretraining loss weights");
  GORP_ALLOC(tokens, (size_t)B * cap, "pretraining batch");
  GORP_ALLOC(targets, (size_t)B * cap, "pretraining targets");
  GORP_ALLOC(lens, B, "pretraining lengths");
  GORP_ALLOC(one_tok, cap, "pretraining example");
  GORP_ALLOC(one_tgt, cap, "pretraining example targets");
  GORP_ALLOC(ids, B, "pretraining example ids");
  out_printf("gorp pretrain: %zu parameters (%d layers, hidden %d, vocab %d), %d steps of %d "
             "examples, lr %g (warm-up %d, cosine to x%g)\n",
             m.n_params, arch.num_layers, arch.hidden_size, arch.vocab_size, c->pretrain.steps, B,
             c->pretrain.lr, c->pretrain.warmup, c->pretrain.min_lr_ratio);
  const double t0 = proc_now_s();
  double smooth = 0.0;
  for (int step = 0; step < c->pretrain.steps; step++) {
    int T = 0;
    for (int b = 0; b < B; b++) { /* examples are a pure function of (seed, index) */
      synth_example e;
      ids[b] = (int64_t)step * B + b;
      GORP_CALL(synth_pretrain_example(&e, c->run.seed, (uint64_t)ids[b]));
      const int rc = encode_example(&tok, &e, one_tok, one_tgt, &lens[b], cap);
      synth_example_free(&e);
      GORP_CALL(rc);
      T = lens[b] > T ? lens[b] : T;
      memcpy(tokens + (size_t)b * cap, one_tok, (size_t)lens[b] * sizeof(int));
      memcpy(targets + (size_t)b * cap, one_tgt, (size_t)lens[b] * sizeof(int));
    }
    for (int b = B - 1; b >= 0; b--) /* compact the rows to width T, right-padded */
      for (int t = T - 1; t >= 0; t--) {
        const int in = t < lens[b];
        const int tokv = in ? tokens[(size_t)b * cap + t] : tok.pad_id;
        const int tgtv = in ? targets[(size_t)b * cap + t] : -1;
        tokens[(size_t)b * T + t] = tokv;
        targets[(size_t)b * T + t] = tgtv;
      }
    /* every example weighs the same, whatever its number of answer tokens: a token mean would let
     * the language-modelling examples (about 3/4 of the answer tokens) drown the option reading */
    for (int b = 0; b < B; b++) {
      int n = 0;
      for (int t = 0; t < T; t++) n += targets[(size_t)b * T + t] >= 0;
      for (int t = 0; t < T; t++)
        weights[(size_t)b * T + t] = targets[(size_t)b * T + t] >= 0 ? 1.0f / ((float)n * B) : 0.0f;
    }
    const float lr = schedule(c, step);
    GORP_CALL(trainer_set_lr(&tr, lr));
    float loss;
    GORP_CALL(trainer_step(&tr, tokens, targets, weights, ids, B, T, (uint64_t)step, &loss));
    smooth = step ? 0.95 * smooth + 0.05 * loss : loss;
    if ((step + 1) % c->run.log_every == 0 || step + 1 == c->pretrain.steps) {
      const double el = proc_now_s() - t0;
      out_printf("  pretrain step %5d/%d  loss %.4f (smoothed %.4f)  lr %.2e  elapsed %6.1fs  eta "
                 "%6.1fs\n",
                 step + 1, c->pretrain.steps, loss, smooth, lr, el,
                 el / (step + 1) * (c->pretrain.steps - step - 1));
      out_flush();
    }
  }
  double in_list = 0.0, exact = 0.0;
  GORP_CALL(held_out_check(&m, &tok, c->run.seed, 200, &in_list, &exact));
  out_printf("gorp pretrain: on 200 held-out option lists the base answers inside the list %.1f%% "
             "and names the right concept %.1f%%\n",
             in_list, exact);
  GORP_CALL(modelfile_save_tp(&m, c->pretrain.out, NULL, &d)); /* every rank takes part */
  if (d.rank == 0) {
    char path[4200], tmp[4300];
    snprintf(path, sizeof(path), "%s.key", c->pretrain.out);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%016llx\n", (unsigned long long)key) < 0 || fclose(f))
      GORP_ERR(GORP_EIO, "cannot write %s", tmp);
    GORP_CALL(fs_publish(tmp, path));
    out_printf("gorp pretrain: wrote %s (%.1f s)\n", c->pretrain.out, proc_now_s() - t0);
  }
  GORP_CALL(dist_barrier(&d));
  free(tokens);
  free(targets);
  free(lens);
  free(one_tok);
  free(one_tgt);
  free(ids);
  free(weights);
  trainer_free(&tr);
  model_free(&m);
  tokenizer_free(&tok);
  return GORP_OK;
}

typedef struct pretrain_args {
  const char *config;
  cmd_list sets; /* section.key=value overrides, in order */
} pretrain_args;

static int pretrain_main(const void *args) {
  const pretrain_args *a = args;
  gorp_config c;
  GORP_CALL(config_load(&c, a->config, a->sets.items, a->sets.n));
  const int rc = pretrain(&c);
  config_free(&c);
  return rc;
}

static const cmd_arg pretrain_table[] = {
    {NULL, CMD_TEXT, offsetof(pretrain_args, config), "CONFIG.ini",
     "a config with data.format = synthetic and a [pretrain] section", 1},
    CMD_ARG_SET(pretrain_args, sets),
};

const cmd_spec cmd_pretrain_spec = {
    CMD_SPEC("pretrain",
             "trains the synthetic suite's base model on its pretraining mix (docs/SYNTHETIC.md)",
             pretrain_table, pretrain_args, pretrain_main)};
