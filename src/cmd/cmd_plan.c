/* gorp plan CONFIG.ini [--set section.key=value]... [--hf-config PATH] [--tp N] [--dp N] [--seq T]
 * [--json]:
 * per-rank bytes (weights, trainable gradients, LoRA, optimizer states, GORP bases, activations,
 * workspace) and FLOPs per training step of the config's run under a tp x dp layout, so that a
 * user can choose nodes and a layout before submitting (docs/PLAN.md). The arithmetic is plan.c;
 * this file resolves its inputs: the model's shape (model.init's /model attributes, or the
 * model.* keys), the vocabulary, the batch and the sequence length, and prints.
 * Reads nothing but the config, model.init's attributes (or --hf-config's config.json) and (random
 * init without model.vocab_size) data.tokenizer; starts nothing. */
#include "gorp/cmd.h"
#include "gorp/config.h"
#include "gorp/err.h"
#include "gorp/fsutil.h"
#include "gorp/hf_import.h"
#include "gorp/lora.h"
#include "gorp/modelfile.h"
#include "gorp/plan.h"
#include "gorp/plan_time.h"
#include "gorp/synth.h"
#include "gorp/tokenizer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Assumed when nothing says the vocabulary size (LLaMA-2's). */
enum { PLAN_ASSUMED_VOCAB = 32000 };

typedef struct plan_args {
  const char *path;
  const char *hf_config; /* a Hugging Face config.json (or its folder) for the shape, or NULL */
  float gflops;          /* --gflops: the throughput per rank for the time estimate; 0: none */
  int measure;           /* --measure: time this machine's GEMM instead */
  cmd_list sets;         /* section.key=value overrides, in order */
  int tp, dp, seq;       /* 0 = from the config */
  int json;
} plan_args;

/* What the printout says about where each input came from. */
typedef struct plan_sources {
  char shape[4200], vocab[4200], seq[160], notes[4][4300];
  int n_notes;
} plan_sources;

static void note(plan_sources *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(plan_sources *s, const char *fmt, ...) {
  if (s->n_notes == 4) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->notes[s->n_notes++], sizeof(s->notes[0]), fmt, ap);
  va_end(ap);
}

/* The vocabulary of a random-init model whose model.vocab_size is 0: the tokenizer's, as gorp run
 * sizes it. */
static int random_vocab(const gorp_config *c, int *V, plan_sources *s) {
  if (!strcmp(c->data.format, "synthetic")) {
    *V = synth_vocab_size();
    snprintf(s->vocab, sizeof(s->vocab), "the synthetic suite's tokenizer");
    return GORP_OK;
  }
  if (!strcmp(c->data.tokenizer, "byte")) {
    *V = 259;
    snprintf(s->vocab, sizeof(s->vocab), "the byte-level tokenizer (data.tokenizer = byte)");
    return GORP_OK;
  }
  struct stat st;
  if (stat(c->data.tokenizer, &st)) {
    *V = PLAN_ASSUMED_VOCAB;
    snprintf(s->vocab, sizeof(s->vocab), "assumed (LLaMA-2's)");
    note(s,
         "vocab_size %d is assumed: model.vocab_size is 0 and data.tokenizer = %s does not "
         "exist; set model.vocab_size to plan another",
         PLAN_ASSUMED_VOCAB, c->data.tokenizer);
    return GORP_OK;
  }
  tokenizer tok;
  GORP_CALL(tokenizer_open(&tok, c->data.tokenizer));
  *V = tok.vocab_size;
  tokenizer_free(&tok);
  snprintf(s->vocab, sizeof(s->vocab), "data.tokenizer = %s", c->data.tokenizer);
  return GORP_OK;
}

/* The model shape: a Hugging Face config.json when --hf-config names one (planning before the
 * import), else model.init's /model attributes when it is a file, else the model.* keys. */
static int model_shape(const gorp_config *c, const char *hf_config, model_config *cfg,
                       plan_sources *s) {
  if (hf_config) {
    GORP_CALL(hf_config_read(hf_config, cfg, NULL));
    snprintf(s->shape, sizeof(s->shape), "read from --hf-config %s", hf_config);
    snprintf(s->vocab, sizeof(s->vocab), "the config.json");
    return GORP_OK;
  }
  if (strcmp(c->model.init, "random")) {
    struct stat st;
    if (stat(c->model.init, &st))
      GORP_ERR(GORP_EINPUT,
               "model.init = %s: %s (gorp plan reads the architecture from this file; to plan "
               "without it, --set model.init=random and the model.* shape keys, docs/PLAN.md)",
               c->model.init, strerror(errno));
    /* HDF5 would open a FIFO and wait for a writer */
    GORP_CALL(fs_check_regular(c->model.init, "model.init", NULL));
    GORP_CALL(modelfile_read_config(c->model.init, cfg));
    snprintf(s->shape, sizeof(s->shape), "read from model.init = %s", c->model.init);
    snprintf(s->vocab, sizeof(s->vocab), "the model file");
    return GORP_OK;
  }
  *cfg = c->model.arch;
  snprintf(s->shape, sizeof(s->shape), "the model.* keys (model.init = random)");
  if (cfg->vocab_size) {
    snprintf(s->vocab, sizeof(s->vocab), "model.vocab_size");
    return GORP_OK;
  }
  return random_vocab(c, &cfg->vocab_size, s);
}

/* The largest batch of any task (train.per_task may change it) and the planned length. */
static void batch_and_seq(const gorp_config *c, const model_config *cfg, int seq_flag,
                          plan_layout *lay, plan_sources *s) {
  task_train tt;
  const int mtl = !strcmp(c->run.method, "mtl");
  lay->batch = 0;
  for (int i = 0; i < (mtl ? 1 : c->data.n_tasks); i++) {
    config_task_train(c, mtl ? "" : c->data.tasks[i], &tt);
    if (tt.batch_size > lay->batch) lay->batch = tt.batch_size;
  }
  if (!lay->batch) lay->batch = c->train.batch_size;
  /* the answer's ids and the end id carry the loss: the training step's head rows */
  lay->answer = c->data.max_target_length + 1;
  if (seq_flag) {
    lay->seq = seq_flag;
    snprintf(s->seq, sizeof(s->seq), "--seq");
    return;
  }
  const int want = c->data.max_source_length + c->data.max_target_length;
  lay->seq = want < cfg->max_seq ? want : cfg->max_seq;
  if (want <= cfg->max_seq)
    snprintf(s->seq, sizeof(s->seq), "data.max_source_length %d + data.max_target_length %d",
             c->data.max_source_length, c->data.max_target_length);
  else
    snprintf(s->seq, sizeof(s->seq), "the model's max_position_embeddings (below %d + %d)",
             c->data.max_source_length, c->data.max_target_length);
}

/* "q,v" from a LORA_* bit set. */
static void target_list(char *out, size_t n, unsigned bits) {
  out[0] = '\0';
  for (int t = 0; t < LORA_N_TARGETS; t++)
    if (bits >> t & 1)
      snprintf(out + strlen(out), n - strlen(out), "%s%s", out[0] ? "," : "", lora_target_names[t]);
  if (!out[0]) snprintf(out, n, "none");
}

static void describe_method(char *out, size_t n, const plan_method *m) {
  char lt[64], ft[64];
  target_list(lt, sizeof(lt), m->lora_targets);
  target_list(ft, sizeof(ft), m->full_targets);
  if (m->all_weights) {
    snprintf(out, n, "%s: every tensor trains with AdamW", m->name);
    return;
  }
  int k = snprintf(out, n, "%s, %d task(s): LoRA %s", m->name, m->n_tasks, lt);
  if (m->lora_targets)
    k += snprintf(out + k, n - k, " r=%d (%d pair(s) stacked after the last task)", m->lora_r,
                  m->lora_pairs);
  if (m->full_targets)
    k += snprintf(out + k, n - k, "; full-rank %s with %s", ft,
                  m->full_lowrank ? "rank-k projected Adam" : "plain AdamW");
  if (m->full_targets && m->full_lowrank) k += snprintf(out + k, n - k, " (k=%d)", m->full_rank);
  if (m->bases_lora || m->bases_full)
    snprintf(out + k, n - k, "; GORP bases on %s%s%s, %s axis, %s source",
             m->bases_lora ? "LoRA A" : "", m->bases_lora && m->bases_full ? " and " : "",
             m->bases_full ? "the full-rank targets" : "", m->input_axis ? "input" : "paper",
             m->activation_bases ? "activation" : "moment");
}

static double gib(uint64_t floats) {
  return (double)floats * sizeof(float) / (1024.0 * 1024.0 * 1024.0);
}

static void print_time(const plan_time *t) {
  printf("\ntime at %.1f GFLOP/s per rank (%s; FLOP-bound: small-batch decoding is slower):\n",
         t->gflops, t->measured ? "--measure: this machine's GEMM" : "--gflops");
  printf("  a training step %.3g s; a test prompt (%d ids + eval.max_new_tokens) %.3g s\n",
         t->step_s, t->prompt_ids, t->prompt_s);
  printf("  %-16s %9s %7s %10s %6s %6s %10s\n", "task", "examples", "steps", "train h", "test",
         "rows", "eval h");
  for (int i = 0; i < t->n_tasks; i++) {
    const plan_time_task *k = &t->task[i];
    printf("  %-16s %9d %7d %10.2f %6d %6d %10.2f\n", k->name, k->examples, k->steps,
           k->train_s / 3600, k->test, k->rows, k->eval_s / 3600);
  }
  printf("  whole run: training %.2f h, evaluation %.2f h (%lld prompts per rank), %.2f h\n",
         t->train_s / 3600, t->eval_s / 3600, t->prompts, (t->train_s + t->eval_s) / 3600);
}

static void print_text(const plan *p, const char *path, const plan_sources *s, const plan_time *t) {
  const model_config *c = &p->cfg;
  const plan_layout *l = &p->layout;
  char method[512];
  describe_method(method, sizeof(method), &p->method);
  printf("gorp plan: %s\n", path);
  printf("model   %d layers, hidden %d, MLP %d, %d heads (%d KV) x %d, vocab %d, %s head: %llu "
         "parameters\n"
         "        shape: %s; vocab: %s\n",
         c->num_layers, c->hidden_size, c->intermediate_size, c->num_heads, c->num_kv_heads,
         c->head_dim, c->vocab_size, c->tie_embeddings ? "tied" : "untied",
         (unsigned long long)p->n_params, s->shape, s->vocab);
  printf("method  %s\n", method);
  printf("layout  tp %d x dp %d = %d rank(s); %d sequence(s) per DP rank (batch %d over dp %d) x "
         "%d tokens (%s): N = %d tokens per rank; the head computes the answer rows only, at "
         "most %d per sequence (data.max_target_length + the end id)\n\n",
         l->tp, l->dp, l->tp * l->dp, p->batch_local, l->batch, l->dp, l->seq, s->seq,
         p->batch_local * l->seq, l->answer < l->seq ? l->answer : l->seq);
  printf("%-66s %15s %9s  %s\n", "per rank (fp32)", "bytes", "GiB", "over tp");
  for (int part = 0; part < PLAN_N_PARTS; part++) {
    printf("%-66s %15llu %9.3f\n", plan_part_names[part],
           (unsigned long long)(p->floats[part] * sizeof(float)), gib(p->floats[part]));
    for (int i = 0; i < p->n_items; i++) {
      const plan_item *it = &p->items[i];
      if (it->part != part) continue;
      printf("  %-64s %15llu %9.3f  %s\n", it->what,
             (unsigned long long)(it->floats * sizeof(float)), gib(it->floats),
             part == PLAN_WORK ? "per rank"
             : it->sharded     ? "split"
                               : "replicated");
    }
  }
  printf("%-66s %15llu %9.3f\n", "total per rank", (unsigned long long)(p->total * sizeof(float)),
         gib(p->total));
  printf("%-66s %15llu %9.3f\n\n", "total over all ranks",
         (unsigned long long)(p->total * sizeof(float) * l->tp * l->dp),
         gib(p->total) * l->tp * l->dp);
  printf("FLOPs per training step per rank: forward %.3e (attention T^2 terms %.3e), forward + "
         "backward = 3 x forward%s = %.3e\n",
         p->flops_forward, p->flops_attention,
         l->recompute ? " + the layers' forward again (train.recompute)" : "", p->flops_step);
  if (p->method.bases_lora || p->method.bases_full)
    printf("note: GORP bases are the worst case, every basis at its capacity (the axis length, or "
           "tasks x "
           "full.rank for a rank-k target) "
           "(gorp allocates them at start)\n");
  if (l->tp > 1)
    printf("note: tp > 1 is the Megatron layout gorp run uses, for every method and GORP "
           "variant (docs/PARALLEL.md)\n");
  for (int i = 0; i < s->n_notes; i++) printf("note: %s\n", s->notes[i]);
  if (t) print_time(t);
}

static cJSON *json_bytes(const uint64_t *floats) {
  cJSON *o = cJSON_CreateObject();
  uint64_t total = 0;
  for (int i = 0; i < PLAN_N_PARTS; i++) {
    cJSON_AddNumberToObject(o, plan_part_names[i], (double)(floats[i] * sizeof(float)));
    total += floats[i];
  }
  cJSON_AddNumberToObject(o, "total", (double)(total * sizeof(float)));
  return o;
}

static cJSON *json_time(const plan_time *t) {
  cJSON *o = cJSON_CreateObject(), *tasks = cJSON_AddArrayToObject(o, "tasks");
  cJSON_AddNumberToObject(o, "gflops", t->gflops);
  cJSON_AddBoolToObject(o, "measured", t->measured);
  cJSON_AddNumberToObject(o, "step_s", t->step_s);
  cJSON_AddNumberToObject(o, "prompt_s", t->prompt_s);
  cJSON_AddNumberToObject(o, "train_s", t->train_s);
  cJSON_AddNumberToObject(o, "eval_s", t->eval_s);
  cJSON_AddNumberToObject(o, "prompts_per_rank", (double)t->prompts);
  for (int i = 0; i < t->n_tasks; i++) {
    const plan_time_task *k = &t->task[i];
    cJSON *it = cJSON_CreateObject();
    cJSON_AddStringToObject(it, "task", k->name);
    cJSON_AddNumberToObject(it, "examples", k->examples);
    cJSON_AddNumberToObject(it, "steps", k->steps);
    cJSON_AddNumberToObject(it, "test", k->test);
    cJSON_AddNumberToObject(it, "rows", k->rows);
    cJSON_AddNumberToObject(it, "train_s", k->train_s);
    cJSON_AddNumberToObject(it, "eval_s", k->eval_s);
    cJSON_AddItemToArray(tasks, it);
  }
  return o;
}

static int print_json(const plan *p, const char *path, const plan_sources *s, const plan_time *t) {
  const model_config *c = &p->cfg;
  const plan_layout *l = &p->layout;
  const plan_method *m = &p->method;
  char lt[64], ft[64];
  target_list(lt, sizeof(lt), m->lora_targets);
  target_list(ft, sizeof(ft), m->full_targets);
  cJSON *j = cJSON_CreateObject(), *o;
  cJSON_AddStringToObject(j, "config", path);
  cJSON_AddItemToObject(j, "model", o = cJSON_CreateObject());
  int n_keys;
  const model_key *k = model_config_keys(&n_keys);
  for (int i = 0; i < n_keys; i++) /* the shape; the float keys play no part in a plan */
    if (k[i].type == MODEL_KEY_INT)
      cJSON_AddNumberToObject(o, k[i].name, model_key_get(c, &k[i]));
    else if (k[i].type == MODEL_KEY_BOOL)
      cJSON_AddBoolToObject(o, k[i].name, (int)model_key_get(c, &k[i]));
  cJSON_AddNumberToObject(o, "parameters", (double)p->n_params);
  cJSON_AddStringToObject(o, "shape_source", s->shape);
  cJSON_AddStringToObject(o, "vocab_source", s->vocab);
  cJSON_AddItemToObject(j, "method", o = cJSON_CreateObject());
  cJSON_AddStringToObject(o, "name", m->name);
  cJSON_AddNumberToObject(o, "tasks", m->n_tasks);
  cJSON_AddBoolToObject(o, "all_weights", m->all_weights);
  cJSON_AddStringToObject(o, "lora_targets", lt);
  cJSON_AddNumberToObject(o, "lora_r", m->lora_r);
  cJSON_AddNumberToObject(o, "lora_pairs", m->lora_pairs);
  cJSON_AddStringToObject(o, "full_targets", ft);
  cJSON_AddStringToObject(o, "full_optimizer", m->full_lowrank ? "lowrank" : "adam");
  cJSON_AddNumberToObject(o, "full_rank", m->full_rank);
  cJSON_AddBoolToObject(o, "bases_lora", m->bases_lora);
  cJSON_AddBoolToObject(o, "bases_full", m->bases_full);
  cJSON_AddStringToObject(o, "axis", m->input_axis ? "input" : "paper");
  cJSON_AddStringToObject(o, "basis_source", m->activation_bases ? "activation" : "moment");
  cJSON_AddItemToObject(j, "layout", o = cJSON_CreateObject());
  cJSON_AddNumberToObject(o, "tp", l->tp);
  cJSON_AddNumberToObject(o, "dp", l->dp);
  cJSON_AddNumberToObject(o, "ranks", l->tp * l->dp);
  cJSON_AddNumberToObject(o, "batch", l->batch);
  cJSON_AddNumberToObject(o, "batch_per_rank", p->batch_local);
  cJSON_AddNumberToObject(o, "seq", l->seq);
  cJSON_AddNumberToObject(o, "answer", l->answer);
  cJSON_AddStringToObject(o, "seq_source", s->seq);
  cJSON_AddNumberToObject(o, "eval_batch", l->eval_batch);
  cJSON_AddItemToObject(j, "bytes_per_rank", json_bytes(p->floats));
  cJSON_AddItemToObject(j, "bytes_per_rank_split_over_tp", json_bytes(p->sharded));
  cJSON_AddNumberToObject(j, "bytes_all_ranks", (double)(p->total * sizeof(float)) * l->tp * l->dp);
  cJSON *items = cJSON_AddArrayToObject(j, "items");
  for (int i = 0; i < p->n_items; i++) {
    cJSON *it = cJSON_CreateObject();
    cJSON_AddStringToObject(it, "part", plan_part_names[p->items[i].part]);
    cJSON_AddStringToObject(it, "what", p->items[i].what);
    cJSON_AddNumberToObject(it, "bytes", (double)(p->items[i].floats * sizeof(float)));
    cJSON_AddBoolToObject(it, "split_over_tp", p->items[i].sharded);
    cJSON_AddItemToArray(items, it);
  }
  cJSON_AddItemToObject(j, "flops_per_step_per_rank", o = cJSON_CreateObject());
  cJSON_AddNumberToObject(o, "forward", p->flops_forward);
  cJSON_AddNumberToObject(o, "attention", p->flops_attention);
  cJSON_AddNumberToObject(o, "step", p->flops_step);
  cJSON *notes = cJSON_AddArrayToObject(j, "notes");
  if (m->bases_lora || m->bases_full)
    cJSON_AddItemToArray(notes, cJSON_CreateString("GORP bases at the worst case: cap = axis "
                                                   "length columns, allocated at start"));
  if (l->tp > 1)
    cJSON_AddItemToArray(notes, cJSON_CreateString("tp > 1: GORP is built for gorp.axis = input "
                                                   "with moment bases"));
  for (int i = 0; i < s->n_notes; i++) cJSON_AddItemToArray(notes, cJSON_CreateString(s->notes[i]));
  if (t) cJSON_AddItemToObject(j, "time", json_time(t));
  char *text = cJSON_Print(j);
  cJSON_Delete(j);
  if (!text) GORP_ERR(GORP_EMEM, "out of memory printing the plan as JSON");
  printf("%s\n", text);
  cJSON_free(text);
  return GORP_OK;
}

static int plan_config(const gorp_config *c, const plan_args *a) {
  plan_sources s = {0};
  model_config cfg;
  GORP_CALL(model_shape(c, a->hf_config, &cfg, &s));
  plan_layout lay = {.tp = a->tp ? a->tp : c->parallel.tp,
                     .dp = a->dp ? a->dp : c->parallel.dp,
                     .eval_batch = c->eval.batch_size,
                     .recompute = c->train.recompute,
                     .bf16 = !strcmp(c->model.dtype, "bf16"),
                     .trained_bf16 = !strcmp(c->model.trained_products, "bf16")};
  /* a rank decodes at most its share of a capped test set together (dp < 1 is refused below) */
  if (c->data.max_test_per_task > 0 && lay.dp > 0) {
    const int share = (c->data.max_test_per_task + lay.dp - 1) / lay.dp;
    if (share < lay.eval_batch) lay.eval_batch = share;
  }
  batch_and_seq(c, &cfg, a->seq, &lay, &s);
  if (a->seq && a->seq > cfg.max_seq)
    GORP_ERR(GORP_EINPUT, "--seq %d exceeds the model's max_position_embeddings = %d", a->seq,
             cfg.max_seq);
  plan_method m;
  GORP_CALL(plan_method_from_config(&m, c));
  plan *p = malloc(sizeof(*p));
  if (!p) GORP_ERR(GORP_EMEM, "out of memory");
  int rc = a->gflops < 0 || (a->gflops > 0 && a->measure)
               ? GORP_ERROR(GORP_EUSAGE, "--gflops takes a positive number, and not with --measure")
               : plan_compute(p, &cfg, &m, &lay);
  plan_time t = {0}, *tp = NULL;
  if (!rc && (a->gflops > 0 || a->measure)) {
    double g = a->gflops;
    if (a->measure) rc = plan_time_measure(&g, p, 1.0);
    if (!rc) rc = plan_time_compute(&t, p, c, g);
    t.measured = a->measure;
    tp = &t;
  }
  if (!rc) {
    if (a->json)
      rc = print_json(p, a->path, &s, tp);
    else
      print_text(p, a->path, &s, tp);
  }
  plan_time_free(&t);
  free(p);
  return rc;
}

static int plan_main(const void *args) {
  const plan_args *a = args;
  gorp_config c;
  GORP_CALL(config_load(&c, a->path, a->sets.items, a->sets.n));
  const int rc = plan_config(&c, a);
  config_free(&c);
  return rc;
}

static const cmd_arg plan_table[] = {
    {NULL, CMD_TEXT, offsetof(plan_args, path), "CONFIG.ini", "the run's config", 1},
    CMD_ARG_SET(plan_args, sets),
    {"hf-config", CMD_TEXT, offsetof(plan_args, hf_config), "PATH",
     "the model's shape from a Hugging Face config.json (or its folder) instead of model.init", 0},
    {"tp", CMD_COUNT, offsetof(plan_args, tp), "N", "tensor-parallel ranks (default parallel.tp)",
     0},
    {"dp", CMD_COUNT, offsetof(plan_args, dp), "N", "data-parallel groups (default parallel.dp)",
     0},
    {"seq", CMD_COUNT, offsetof(plan_args, seq), "T",
     "tokens per sequence (default data.max_source_length + data.max_target_length, at most "
     "the model's positions)",
     0},
    {"gflops", CMD_FLOAT, offsetof(plan_args, gflops), "G",
     "estimate the run's time per task at G GFLOP/s per rank (reads the tasks' data to count "
     "steps and test prompts)",
     0},
    {"measure", CMD_FLAG, offsetof(plan_args, measure), NULL,
     "the same at this machine's GEMM throughput, measured for about a second", 0},
    {"json", CMD_FLAG, offsetof(plan_args, json), NULL, "one JSON object instead of the table", 0},
};

const cmd_spec cmd_plan_spec = {CMD_SPEC(
    "plan", "per-rank memory and FLOPs per training step under a tp x dp layout (docs/PLAN.md)",
    plan_table, plan_args, plan_main)};
