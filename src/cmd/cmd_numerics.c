/* gorp logits / grad / fit / generate: the numerics checks on a fixed batch of token ids, so that
 * anyone can compare gorp with another implementation (tests/ref/ does so against PyTorch).
 *   IDS.txt: one sequence per line, whitespace-separated token ids, all lines the same length.
 *   --targets TGT.txt (grad, fit): same layout, the id each position predicts, -1 = no loss;
 *   default: next-token targets (position i predicts token i+1; the last position none).
 *   fit --time [--warmup W]: every step line also gives its seconds (step_s), and after the run
 *   one machine-readable line
 *     fit-time steps=N warmup=W tokens_per_step=T mean_step_s=.. min_step_s=.. tokens_per_s=..
 *              peak_rss_mb=..
 *   where the first W of the --steps steps are run but not timed (N = steps - W), a step is
 *   zero grads + forward + backward + clip + AdamW (wall clock, CLOCK_MONOTONIC), T = sequences x
 *   length, and peak_rss_mb is the process's VmHWM (proc.h). bench/ reads this line.
 *   generate --max-new N [--eos ID] [--out OUT.txt] [--time]: greedy decoding of each line as a
 *   prompt with the KV cache (as evaluation decodes), each stopping after --eos or one of the
 *   model file's end ids (its eos_token_id); writes the new ids, one line per prompt, to
 *   OUT.txt (default: standard output); --time prints after the run
 *     generate-time sequences=S prompt_len=T new_tokens=N total_s=.. new_tokens_per_s=..
 *                   peak_rss_mb=..
 *   where total_s covers every prompt's prefill and decoding (the model load excluded) and T is
 *   the longest prompt's length.
 *   generate --text TEXT | --text-file FILE --tokenizer TOK [--chat CHAT.json]: the prompts are
 *   text (one per line of FILE), encoded as gorp run encodes an evaluation input, the tokenizer's
 *   EOS stops them too, and each answer is written as text, one line per prompt (docs/DATA.md
 *   "gorp generate on text").
 *   logits, generate --bf16: every matrix held and multiplied in bf16 (fp32 sums), as a run with
 *   model.dtype = bf16 holds its frozen weights.
 * Not for: benchmarking by itself (bench/bench_train.py compares with PyTorch and the SGEMM
 * ceiling) or training on data sets (gorp run). */
#include "gorp/cl.h"
#include "gorp/cmd.h"
#include "gorp/err.h"
#include "gorp/fsutil.h"
#include "gorp/proc.h"
#include "gorp/model.h"
#include "gorp/modelfile.h"
#include "gorp/optim.h"
#include "gorp/prompt.h"
#include "gorp/tokenizer.h"

#include <errno.h>
#include <hdf5.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct numerics_args {
  const char *model, *tokens, *targets, *out;
  const char *text, *text_file, *tokenizer, *chat; /* generate: prompts as text (gen_prompts) */
  int steps, warmup, time;
  int bf16;         /* logits, generate: every matrix in bf16 (model_prep_bf16_inference) */
  int max_new, eos; /* generate: new tokens per prompt; an id that stops it besides the model's
                       end ids (-1: none) */
  float lr, beta1, beta2, eps, weight_decay, grad_clip;
} numerics_args;

/* Reads a rectangular file of integer ids into *ids (S, T): a regular file under a size cap, so
 * a device or a FIFO given as --tokens cannot stall the command. */
static int ids_read(const char *path, int **ids, int *S, int *T) {
  char *text;
  size_t len;
  GORP_CALL(fs_read_regular(path, "token id file", FS_MAX_TOKEN_IDS, &text, &len));
  if (memchr(text, '\0', len)) {
    free(text);
    GORP_ERR(GORP_EINPUT, "%s: holds a NUL byte (expected token ids as text)", path);
  }
  size_t cap = 1024, n = 0;
  int *buf = malloc(cap * sizeof(int));
  if (!buf) {
    free(text);
    GORP_ERR(GORP_EMEM, "%s: out of memory reading token ids", path);
  }
  int rows = 0, width = -1, line_no = 0, rc = GORP_OK;
  for (char *line = text; rc == GORP_OK && line && *line;) {
    char *eol = strchr(line, '\n');
    if (eol) *eol = '\0';
    line_no++;
    int count = 0;
    char *p = line, *end;
    for (;;) {
      while (*p == ' ' || *p == '\t' || *p == '\r') p++;
      if (!*p) break;
      errno = 0;
      long v = strtol(p, &end, 10);
      if (end == p || errno || v < INT_MIN || v > INT_MAX) {
        rc = GORP_ERROR(GORP_EINPUT, "%s:%d: expected an integer token id, found '%.20s'", path,
                        line_no, p);
        break;
      }
      if (n == cap) {
        int *grown = realloc(buf, (cap *= 2) * sizeof(int));
        if (!grown) {
          rc = GORP_ERROR(GORP_EMEM, "%s: out of memory reading %zu token ids", path, n);
          break;
        }
        buf = grown;
      }
      buf[n++] = (int)v;
      count++;
      p = end;
    }
    line = eol ? eol + 1 : NULL;
    if (rc || count == 0) continue;
    if (width >= 0 && count != width)
      rc = GORP_ERROR(GORP_EINPUT,
                      "%s:%d: %d ids, but the first line has %d (all sequences must have one "
                      "length)",
                      path, line_no, count, width);
    width = count;
    rows++;
  }
  free(text);
  if (!rc && rows == 0) rc = GORP_ERROR(GORP_EINPUT, "%s: no token ids", path);
  if (rc) {
    free(buf);
    return rc;
  }
  *ids = buf;
  *S = rows;
  *T = width;
  return GORP_OK;
}

static void next_token_targets(int *targets, const int *ids, int S, int T) {
  for (int s = 0; s < S; s++)
    for (int t = 0; t < T; t++) targets[s * T + t] = t + 1 < T ? ids[s * T + t + 1] : -1;
}

/* Loads model, tokens and targets; runs one forward pass with loss when want_loss. */
typedef struct batch {
  model m;
  int *ids, *targets;
  int S, T;
} batch;

static int batch_load(batch *b, const numerics_args *a, int want_targets) {
  memset(b, 0, sizeof(*b));
  const model_prep bf16 = {model_prep_bf16_inference, NULL};
  GORP_CALL(modelfile_load_tp(&b->m, a->model, NULL, a->bf16 ? &bf16 : NULL));
  if (!a->tokens) return GORP_OK; /* generate --text/--text-file: gen_encode_texts */
  GORP_CALL(ids_read(a->tokens, &b->ids, &b->S, &b->T));
  if (!want_targets) return GORP_OK;
  if (a->targets) {
    int S, T;
    GORP_CALL(ids_read(a->targets, &b->targets, &S, &T));
    if (S != b->S || T != b->T)
      GORP_ERR(GORP_EINPUT, "%s: %d x %d targets, but %s has %d x %d ids", a->targets, S, T,
               a->tokens, b->S, b->T);
    for (int i = 0; i < S * T; i++)
      if (b->targets[i] < -1 || b->targets[i] >= b->m.cfg.vocab_size)
        GORP_ERR(GORP_EINPUT,
                 "%s: target %d at sequence %d, position %d is neither -1 nor in [0, %d)",
                 a->targets, b->targets[i], i / T, i % T, b->m.cfg.vocab_size);
  } else {
    GORP_ALLOC(b->targets, (size_t)b->S * b->T, "targets");
    next_token_targets(b->targets, b->ids, b->S, b->T);
  }
  return GORP_OK;
}

static void batch_free(batch *b) {
  model_free(&b->m);
  free(b->ids);
  free(b->targets);
}

static int h5_write_floats(hid_t file, const char *name, int rank, const hsize_t *dims,
                           const float *data) {
  hid_t space = H5Screate_simple(rank, dims, NULL);
  GORP_H5(space);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  GORP_H5(H5Pset_create_intermediate_group(lcpl, 1));
  hid_t ds = H5Dcreate2(file, name, H5T_IEEE_F32LE, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  GORP_H5(ds);
  GORP_H5(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
  GORP_H5(H5Dclose(ds));
  GORP_H5(H5Pclose(lcpl));
  GORP_H5(H5Sclose(space));
  return GORP_OK;
}

static int h5_create(const char *path, hid_t *file) {
  *file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (*file < 0) GORP_ERR(GORP_EIO, "%s: cannot create HDF5 file", path);
  return GORP_OK;
}

static int run_logits(const void *args) {
  const numerics_args *a = args;
  batch b;
  GORP_CALL(batch_load(&b, a, 1));
  float loss;
  GORP_CALL(model_forward(&b.m, b.ids, b.targets, NULL, b.S, b.T, 0.0f, &loss));
  printf("sequences %d, length %d, mean next-token loss %.6f\n", b.S, b.T, loss);
  if (a->out) {
    hid_t f;
    GORP_CALL(h5_create(a->out, &f));
    hsize_t dims[3] = {(hsize_t)b.S, (hsize_t)b.T, (hsize_t)b.m.cfg.vocab_size};
    GORP_CALL(h5_write_floats(f, "logits", 3, dims, model_logits(&b.m)));
    hsize_t one = 1;
    GORP_CALL(h5_write_floats(f, "loss", 1, &one, &loss));
    GORP_H5(H5Fclose(f));
  }
  batch_free(&b);
  return GORP_OK;
}

static int run_grad(const void *args) {
  const numerics_args *a = args;
  batch b;
  GORP_CALL(batch_load(&b, a, 1));
  float loss;
  GORP_CALL(model_forward(&b.m, b.ids, b.targets, NULL, b.S, b.T, 0.0f, &loss));
  GORP_CALL(model_backward(&b.m));
  printf("sequences %d, length %d, loss %.6f, loss positions %d\n", b.S, b.T, loss, b.m.n_targets);
  if (a->out) {
    hid_t f;
    GORP_CALL(h5_create(a->out, &f));
    hsize_t one = 1;
    GORP_CALL(h5_write_floats(f, "loss", 1, &one, &loss));
    char name[MODEL_NAME_MAX + 8];
    for (int i = 0; i < b.m.n_tensors; i++) {
      const param_tensor *t = &b.m.tensors[i];
      hsize_t dims[2] = {(hsize_t)t->shape[0], (hsize_t)t->shape[1]};
      snprintf(name, sizeof(name), "grad/%s", t->name);
      GORP_CALL(h5_write_floats(f, name, t->ndim, dims, b.m.grads + t->grad_offset));
    }
    GORP_H5(H5Fclose(f));
  }
  batch_free(&b);
  return GORP_OK;
}

/* Prints the fit-time line (header comment) for n_timed steps of tokens tokens each. */
static void fit_time_print(int n_timed, int warmup, long tokens, double total_s, double min_s) {
  const double peak_mb = proc_peak_rss_mb();
  double mean_s = total_s / n_timed;
  printf("fit-time steps=%d warmup=%d tokens_per_step=%ld mean_step_s=%.6f min_step_s=%.6f "
         "tokens_per_s=%.2f peak_rss_mb=%.1f\n",
         n_timed, warmup, tokens, mean_s, min_s, tokens / mean_s, peak_mb);
}

static int run_fit(const void *args) {
  const numerics_args *a = args;
  if (a->warmup < 0 || a->warmup >= a->steps)
    GORP_ERR(GORP_EUSAGE, "fit: --warmup must be in [0, --steps) (got %d with --steps %d)",
             a->warmup, a->steps);
  batch b;
  GORP_CALL(batch_load(&b, a, 1));
  GORP_CALL(model_alloc_grads(&b.m)); /* every tensor trains: grads share the params' layout */
  adamw opt;
  GORP_CALL(
      adamw_init(&opt, b.m.ops, b.m.n_grads, a->lr, a->beta1, a->beta2, a->eps, a->weight_decay));
  float *losses;
  GORP_ALLOC(losses, a->steps, "loss trajectory");
  double timed_s = 0.0, min_s = 0.0;
  const model_step training = {.head = MODEL_HEAD_TARGETS}; /* as gorp run's steps */
  for (int s = 0; s < a->steps; s++) {
    const double t0 = proc_now_s();
    GORP_CALL(model_zero_grads(&b.m));
    GORP_CALL(model_forward(&b.m, b.ids, b.targets, &training, b.S, b.T, 0.0f, &losses[s]));
    GORP_CALL(model_backward(&b.m));
    const grad_segment all = {b.m.grads, b.m.n_grads};
    double norm = grad_clip_norm(&all, 1, a->grad_clip);
    GORP_CALL(adamw_step(&opt, b.m.params, b.m.grads));
    const double dt = proc_now_s() - t0;
    if (s >= a->warmup) {
      timed_s += dt;
      if (s == a->warmup || dt < min_s) min_s = dt;
    }
    if (a->time)
      printf("step %4d loss %.7f grad_norm %.5f step_s %.4f\n", s + 1, losses[s], norm, dt);
    else
      printf("step %4d loss %.7f grad_norm %.5f\n", s + 1, losses[s], norm);
  }
  if (a->out) {
    hid_t f;
    GORP_CALL(h5_create(a->out, &f));
    hsize_t n = (hsize_t)a->steps;
    GORP_CALL(h5_write_floats(f, "losses", 1, &n, losses));
    GORP_H5(H5Fclose(f));
  }
  if (a->time) fit_time_print(a->steps - a->warmup, a->warmup, (long)b.S * b.T, timed_s, min_s);
  free(losses);
  adamw_free(&opt);
  batch_free(&b);
  return GORP_OK;
}

/* generate's prompts: (S) ids of prompt s at ids + off[s], len[s] of them; from --tokens a
 * rectangle, from --text/--text-file each text as gorp run encodes an evaluation input (prompt.h:
 * the tokenizer's template ids, then chat.before + text + chat.after encoded as one string). */
typedef struct gen_prompts {
  int S, *ids, *len;
  size_t *off;
  tokenizer tok; /* kind 0: --tokens (no tokenizer opened) */
} gen_prompts;

static void gen_prompts_free(gen_prompts *g) {
  free(g->ids);
  free(g->off);
  free(g->len);
  if (g->tok.kind) tokenizer_free(&g->tok);
  memset(g, 0, sizeof(*g));
}

/* The argument checks the table cannot express, before the model is loaded. */
static int gen_check_args(const numerics_args *a) {
  const int n_src = !!a->tokens + !!a->text + !!a->text_file;
  if (n_src != 1)
    GORP_ERR(GORP_EUSAGE, "generate: give exactly one of --tokens, --text and --text-file (got %d)",
             n_src);
  if (a->tokens && (a->tokenizer || a->chat))
    GORP_ERR(GORP_EUSAGE,
             "generate: --%s applies to --text/--text-file; --tokens are ids already encoded",
             a->tokenizer ? "tokenizer" : "chat");
  if (!a->tokens && !a->tokenizer)
    GORP_ERR(GORP_EUSAGE,
             "generate: --%s needs --tokenizer (byte, or the model's tokenizer.json) to encode "
             "the text and decode the answer",
             a->text ? "text" : "text-file");
  return GORP_OK;
}

/* The texts of --text (one) or --text-file (one per line; a last line without '\n' counts) into
 * a malloc'd buffer *buf whose lines are NUL-terminated in place: lines[0..*n). */
static int gen_read_texts(const numerics_args *a, char **buf, char ***lines, int *n) {
  size_t len;
  if (a->text) {
    GORP_CHECK((*buf = strdup(a->text)) != NULL, GORP_EMEM, "out of memory copying --text");
    len = strlen(*buf);
  } else {
    GORP_CALL(fs_read_regular(a->text_file, "text prompt file", FS_MAX_TOKEN_IDS, buf, &len));
    GORP_CHECK(!memchr(*buf, '\0', len), GORP_EINPUT,
               "%s: holds a NUL byte (expected text, one prompt per line)", a->text_file);
  }
  int count = a->text ? 1 : 0;
  for (size_t i = 0; !a->text && i < len; i++) count += (*buf)[i] == '\n' || i + 1 == len;
  GORP_CHECK(count > 0, GORP_EINPUT, "%s: no prompts (expected one per line)", a->text_file);
  GORP_ALLOC(*lines, count, "prompt lines");
  char *line = *buf;
  for (int s = 0; s < count; s++) {
    char *eol = a->text ? NULL : strchr(line, '\n');
    if (eol) *eol = '\0';
    (*lines)[s] = line;
    line = eol ? eol + 1 : line + strlen(line);
  }
  *n = count;
  return GORP_OK;
}

static int gen_encode_texts(gen_prompts *g, const numerics_args *a, const model *m) {
  GORP_CALL(tokenizer_open(&g->tok, a->tokenizer));
  if (a->chat) GORP_CALL(tokenizer_open_chat(&g->tok, a->chat));
  if (m->cfg.vocab_size < g->tok.vocab_size)
    GORP_ERR(GORP_EINPUT, "%s: the model's vocab_size %d is smaller than the tokenizer %s's %d ids",
             a->model, m->cfg.vocab_size, a->tokenizer, g->tok.vocab_size);
  char *buf, **lines;
  GORP_CALL(gen_read_texts(a, &buf, &lines, &g->S));
  const int cap = m->cfg.max_seq; /* the most ids a prompt can have: the model's positions */
  int *one;                       /* (max_seq) the prompt being encoded */
  GORP_ALLOC(one, cap, "prompt ids");
  GORP_ALLOC(g->off, g->S, "prompt offsets");
  GORP_ALLOC(g->len, g->S, "prompt lengths");
  char none[] = "";
  size_t total = 0; /* ids of the prompts so far, laid end to end in g->ids */
  int rc = GORP_OK;
  for (int s = 0; s < g->S && !rc; s++) {
    const prompt_parts p = {.prefix = none, .sentence = lines[s], .suffix = ""};
    rc = prompt_parts_encode(&g->tok, &p, NULL, INT_MAX, 1, one, NULL, &g->len[s], cap);
    if (rc) {
      rc = GORP_ERROR(rc,
                      "generate: could not encode prompt %d ('%.40s') in at most "
                      "max_position_embeddings = %d ids",
                      s + 1, lines[s], cap);
    } else if (g->len[s] == 0) {
      rc = GORP_ERROR(GORP_EINPUT,
                      "generate: prompt %d is empty and the tokenizer %s puts no ids before a text",
                      s + 1, a->tokenizer);
    } else {
      int *grown = realloc(g->ids, (total + g->len[s]) * sizeof(int)); /* (total) all prompts */
      if (!grown) rc = GORP_ERROR(GORP_EMEM, "out of memory holding %zu prompt ids", total);
      if (!rc) {
        g->ids = grown;
        memcpy(g->ids + total, one, (size_t)g->len[s] * sizeof(int));
        g->off[s] = total;
        total += g->len[s];
      }
    }
  }
  free(one);
  free(lines);
  free(buf);
  return rc;
}

static int gen_prompts_load(gen_prompts *g, const numerics_args *a, const model *m, batch *b) {
  memset(g, 0, sizeof(*g));
  if (!a->tokens) return gen_encode_texts(g, a, m);
  g->S = b->S;
  GORP_ALLOC(g->off, g->S, "prompt offsets");
  GORP_ALLOC(g->len, g->S, "prompt lengths");
  for (int s = 0; s < g->S; s++) {
    g->off[s] = (size_t)s * b->T;
    g->len[s] = b->T;
  }
  g->ids = b->ids; /* the rectangle's rows */
  b->ids = NULL;
  return GORP_OK;
}

/* One prompt's answer as a line: the text (cl_decode_answer) with '\\', newline and carriage
 * return written as \\, \n and \r, so that every prompt's answer is one line. */
static int gen_write_text(FILE *f, const tokenizer *tok, const int *ids, int n) {
  char *text;
  GORP_CALL(cl_decode_answer(tok, ids, n, &text));
  for (const char *c = text; *c; c++) {
    if (*c == '\\')
      fputs("\\\\", f);
    else if (*c == '\n')
      fputs("\\n", f);
    else if (*c == '\r')
      fputs("\\r", f);
    else
      fputc(*c, f);
  }
  fputc('\n', f);
  free(text);
  return GORP_OK;
}

static int run_generate(const void *args) {
  const numerics_args *a = args;
  GORP_CALL(gen_check_args(a));
  batch b;
  GORP_CALL(batch_load(&b, a, 0));
  if (a->eos < -1 || a->eos >= b.m.cfg.vocab_size)
    GORP_ERR(GORP_EUSAGE, "generate: --eos %d is neither -1 nor a token id in [0, %d)", a->eos,
             b.m.cfg.vocab_size);
  gen_prompts g;
  GORP_CALL(gen_prompts_load(&g, a, &b.m, &b));
  int *out;   /* (S, max_new) the new ids of every prompt */
  int *n_out; /* (S) how many each prompt got (fewer than max_new after a stop id) */
  /* the stop set of gorp run's evaluation with no eval.stop (cl_stop_ids): the model's end ids and
   * the tokenizer's EOS (what training appends after an answer), and --eos */
  int extra[2] = {a->eos, g.tok.kind ? g.tok.eos_id : -1}, stop[MODEL_MAX_EOS + 2], n_stop;
  model_stop_ids(&b.m, extra, 2, stop, &n_stop);
  GORP_ALLOC(out, (size_t)g.S * a->max_new, "generated ids");
  GORP_ALLOC(n_out, g.S, "generated lengths");
  long total_new = 0;
  int longest = 0;
  for (int s = 0; s < g.S; s++) longest = g.len[s] > longest ? g.len[s] : longest;
  const double t0 = proc_now_s();
  for (int s = 0; s < g.S; s++) { /* one prompt at a time, as evaluation decodes */
    const int *prompt = g.ids + g.off[s];
    GORP_CALL(model_generate(&b.m, &prompt, &g.len[s], 1, a->max_new, stop, n_stop,
                             out + (size_t)s * a->max_new, &n_out[s]));
    total_new += n_out[s];
  }
  const double total_s = proc_now_s() - t0;
  FILE *f = a->out ? fopen(a->out, "w") : stdout;
  if (!f) GORP_ERR(GORP_EIO, "%s: cannot create: %s", a->out, strerror(errno));
  for (int s = 0; s < g.S; s++) {
    const int *ids = out + (size_t)s * a->max_new;
    if (g.tok.kind) {
      GORP_CALL(gen_write_text(f, &g.tok, ids, n_out[s]));
      continue;
    }
    for (int i = 0; i < n_out[s]; i++) fprintf(f, i ? " %d" : "%d", ids[i]);
    fputc('\n', f);
  }
  if (a->out && fclose(f)) GORP_ERR(GORP_EIO, "%s: cannot write: %s", a->out, strerror(errno));
  if (a->time)
    printf("generate-time sequences=%d prompt_len=%d new_tokens=%ld total_s=%.6f "
           "new_tokens_per_s=%.2f peak_rss_mb=%.1f\n",
           g.S, longest, total_new, total_s, total_new / total_s, proc_peak_rss_mb());
  free(out);
  free(n_out);
  gen_prompts_free(&g);
  batch_free(&b);
  return GORP_OK;
}

static const numerics_args defaults = {
    .steps = 1, .eos = -1, .lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};

/* The arguments every numerics command takes. */
#define ARG_MODEL                                                                                  \
  { "model", CMD_TEXT, offsetof(numerics_args, model), "M.h5", "the gorp model file", 1 }
#define ARG_TOKENS                                                                                 \
  {                                                                                                \
    "tokens", CMD_TEXT, offsetof(numerics_args, tokens), "IDS.txt",                                \
        "token ids, one sequence per line, all lines the same length", 1                           \
  }
#define ARG_BF16                                                                                   \
  {                                                                                                \
    "bf16", CMD_FLAG, offsetof(numerics_args, bf16), NULL,                                         \
        "hold every matrix in bfloat16 and multiply in bf16 with fp32 sums (model.dtype = bf16)",  \
        0                                                                                          \
  }
#define ARG_TARGETS                                                                                \
  {                                                                                                \
    "targets", CMD_TEXT, offsetof(numerics_args, targets), "TGT.txt",                              \
        "the id each position predicts, -1 = no loss (default: the next token)", 0                 \
  }

static const cmd_arg logits_table[] = {
    ARG_MODEL,
    ARG_TOKENS,
    ARG_TARGETS,
    {"out", CMD_TEXT, offsetof(numerics_args, out), "OUT.h5",
     "write datasets logits (sequences, length, vocab) and loss", 0},
    ARG_BF16,
};

static const cmd_arg grad_table[] = {
    ARG_MODEL,
    ARG_TOKENS,
    ARG_TARGETS,
    {"out", CMD_TEXT, offsetof(numerics_args, out), "OUT.h5",
     "write datasets loss and grad/<HF tensor name> of every parameter", 0},
};

static const cmd_arg fit_table[] = {
    ARG_MODEL,
    ARG_TOKENS,
    ARG_TARGETS,
    {"out", CMD_TEXT, offsetof(numerics_args, out), "OUT.h5", "write dataset losses (steps)", 0},
    {"steps", CMD_COUNT, offsetof(numerics_args, steps), "N", "AdamW steps (default 1)", 0},
    {"warmup", CMD_INT, offsetof(numerics_args, warmup), "W",
     "with --time: the first W steps run untimed (default 0)", 0},
    {"time", CMD_FLAG, offsetof(numerics_args, time), NULL,
     "print each step's seconds and a fit-time line (bench/)", 0},
    {"lr", CMD_FLOAT, offsetof(numerics_args, lr), "X", "learning rate (default 1e-3)", 0},
    {"beta1", CMD_FLOAT, offsetof(numerics_args, beta1), "X", "AdamW beta1 (default 0.9)", 0},
    {"beta2", CMD_FLOAT, offsetof(numerics_args, beta2), "X", "AdamW beta2 (default 0.999)", 0},
    {"eps", CMD_FLOAT, offsetof(numerics_args, eps), "X", "AdamW epsilon (default 1e-8)", 0},
    {"weight-decay", CMD_FLOAT, offsetof(numerics_args, weight_decay), "X",
     "decoupled weight decay (default 0)", 0},
    {"grad-clip", CMD_FLOAT, offsetof(numerics_args, grad_clip), "X",
     "clip the global gradient norm to X (default 0: no clipping)", 0},
};

static const cmd_arg generate_table[] = {
    ARG_MODEL,
    {"tokens", CMD_TEXT, offsetof(numerics_args, tokens), "IDS.txt",
     "prompts as token ids, one per line, all lines the same length; writes ids", 0},
    {"text", CMD_TEXT, offsetof(numerics_args, text), "TEXT",
     "one prompt as text (needs --tokenizer); writes the answer's text", 0},
    {"text-file", CMD_TEXT, offsetof(numerics_args, text_file), "FILE",
     "prompts as text, one per line (needs --tokenizer); writes one answer per line", 0},
    {"tokenizer", CMD_TEXT, offsetof(numerics_args, tokenizer), "TOK",
     "byte, or the model's tokenizer.json (data.tokenizer): encodes as gorp run does", 0},
    {"chat", CMD_TEXT, offsetof(numerics_args, chat), "CHAT.json",
     "wrap each text in this rendered chat template (data.chat_template)", 0},
    {"max-new", CMD_COUNT, offsetof(numerics_args, max_new), "N", "new tokens per prompt", 1},
    {"eos", CMD_INT, offsetof(numerics_args, eos), "ID",
     "stop a prompt's decoding after this id too (default -1: only the model file's end ids "
     "and, for text, the tokenizer's EOS)",
     0},
    {"out", CMD_TEXT, offsetof(numerics_args, out), "OUT.txt",
     "write the answers, one line per prompt (default: standard output)", 0},
    {"time", CMD_FLAG, offsetof(numerics_args, time), NULL,
     "print a generate-time line (new tokens/s, peak memory) after the run", 0},
    ARG_BF16,
};

const cmd_spec cmd_logits_spec = {
    CMD_SPEC("logits", "one forward pass: prints the mean next-token loss, writes the logits",
             logits_table, numerics_args, run_logits),
    .defaults = &defaults};
const cmd_spec cmd_grad_spec = {
    CMD_SPEC("grad", "one forward and backward pass: the loss and every gradient", grad_table,
             numerics_args, run_grad),
    .defaults = &defaults};
const cmd_spec cmd_fit_spec = {
    CMD_SPEC("fit", "AdamW on a fixed batch: prints and writes the loss of every step", fit_table,
             numerics_args, run_fit),
    .defaults = &defaults};
const cmd_spec cmd_generate_spec = {
    CMD_SPEC(
        "generate",
        "greedy decoding of each prompt (ids or text) with the KV cache, as evaluation decodes",
        generate_table, numerics_args, run_generate),
    .defaults = &defaults};
