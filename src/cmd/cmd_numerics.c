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
 *   prompt with the KV cache (as evaluation decodes); writes the new ids, one line per prompt, to
 *   OUT.txt (default: standard output); --time prints after the run
 *     generate-time sequences=S prompt_len=T new_tokens=N total_s=.. new_tokens_per_s=..
 *                   peak_rss_mb=..
 *   where total_s covers every prompt's prefill and decoding (the model load excluded).
 * Not for: benchmarking by itself (bench/bench_train.py compares with PyTorch and the SGEMM
 * ceiling) or training on data sets (gorp run). */
#include "gorp/cmd.h"
#include "gorp/err.h"
#include "gorp/fsutil.h"
#include "gorp/proc.h"
#include "gorp/model.h"
#include "gorp/modelfile.h"
#include "gorp/optim.h"

#include <errno.h>
#include <hdf5.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct numerics_args {
  const char *model, *tokens, *targets, *out;
  int steps, warmup, time;
  int max_new, eos; /* generate: new tokens per prompt; the id that stops it (-1: none) */
  float lr, beta1, beta2, eps, weight_decay, grad_clip;
} numerics_args;

static int parse_float(const char *opt, const char *s, float *v) {
  char *end;
  errno = 0;
  *v = strtof(s, &end);
  if (errno || end == s || *end) GORP_ERR(GORP_EUSAGE, "%s: expected a number, got '%s'", opt, s);
  return GORP_OK;
}

static int parse_int(const char *opt, const char *s, int *v) {
  char *end;
  errno = 0;
  long x = strtol(s, &end, 10);
  if (errno || end == s || *end || x < -2147483647L || x > 2147483647L)
    GORP_ERR(GORP_EUSAGE, "%s: expected an integer, got '%s'", opt, s);
  *v = (int)x;
  return GORP_OK;
}

static int parse_args(numerics_args *a, int argc, char **argv) {
  *a = (numerics_args){
      .steps = 1, .eos = -1, .lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    if (!strcmp(o, "--time")) { /* the one option without a value */
      a->time = 1;
      continue;
    }
    if (i + 1 >= argc) GORP_ERR(GORP_EUSAGE, "%s: option %s needs a value", argv[0], o);
    const char *v = argv[++i];
    if (!strcmp(o, "--model"))
      a->model = v;
    else if (!strcmp(o, "--tokens"))
      a->tokens = v;
    else if (!strcmp(o, "--targets"))
      a->targets = v;
    else if (!strcmp(o, "--out"))
      a->out = v;
    else if (!strcmp(o, "--steps"))
      GORP_CALL(parse_int(o, v, &a->steps));
    else if (!strcmp(o, "--warmup"))
      GORP_CALL(parse_int(o, v, &a->warmup));
    else if (!strcmp(o, "--lr"))
      GORP_CALL(parse_float(o, v, &a->lr));
    else if (!strcmp(o, "--beta1"))
      GORP_CALL(parse_float(o, v, &a->beta1));
    else if (!strcmp(o, "--beta2"))
      GORP_CALL(parse_float(o, v, &a->beta2));
    else if (!strcmp(o, "--eps"))
      GORP_CALL(parse_float(o, v, &a->eps));
    else if (!strcmp(o, "--weight-decay"))
      GORP_CALL(parse_float(o, v, &a->weight_decay));
    else if (!strcmp(o, "--grad-clip"))
      GORP_CALL(parse_float(o, v, &a->grad_clip));
    else if (!strcmp(o, "--max-new"))
      GORP_CALL(parse_int(o, v, &a->max_new));
    else if (!strcmp(o, "--eos"))
      GORP_CALL(parse_int(o, v, &a->eos));
    else
      GORP_ERR(GORP_EUSAGE, "%s: unknown option %s", argv[0], o);
  }
  if (!a->model || !a->tokens)
    GORP_ERR(GORP_EUSAGE, "usage: gorp %s --model M.h5 --tokens IDS.txt [--out OUT.h5]", argv[0]);
  if (a->steps < 1) GORP_ERR(GORP_EUSAGE, "%s: --steps must be >= 1", argv[0]);
  if (a->warmup < 0 || a->warmup >= a->steps)
    GORP_ERR(GORP_EUSAGE, "%s: --warmup must be in [0, --steps) (got %d with --steps %d)", argv[0],
             a->warmup, a->steps);
  return GORP_OK;
}

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
  GORP_CALL(modelfile_load(&b->m, a->model));
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

static int run_logits(const numerics_args *a) {
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

static int run_grad(const numerics_args *a) {
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

static int run_fit(const numerics_args *a) {
  batch b;
  GORP_CALL(batch_load(&b, a, 1));
  GORP_CALL(model_alloc_grads(&b.m)); /* every tensor trains: grads share the params' layout */
  adamw opt;
  GORP_CALL(adamw_init(&opt, b.m.n_grads, a->lr, a->beta1, a->beta2, a->eps, a->weight_decay));
  float *losses;
  GORP_ALLOC(losses, a->steps, "loss trajectory");
  double timed_s = 0.0, min_s = 0.0;
  for (int s = 0; s < a->steps; s++) {
    const double t0 = proc_now_s();
    model_zero_grads(&b.m);
    GORP_CALL(model_forward(&b.m, b.ids, b.targets, NULL, b.S, b.T, 0.0f, &losses[s]));
    GORP_CALL(model_backward(&b.m));
    const grad_segment all = {b.m.grads, b.m.n_grads};
    double norm = grad_clip_norm(&all, 1, a->grad_clip);
    adamw_step(&opt, b.m.params, b.m.grads);
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

static int run_generate(const numerics_args *a) {
  if (a->max_new < 1) GORP_ERR(GORP_EUSAGE, "generate: --max-new N (N >= 1) is required");
  batch b;
  GORP_CALL(batch_load(&b, a, 0));
  if (a->eos < -1 || a->eos >= b.m.cfg.vocab_size)
    GORP_ERR(GORP_EUSAGE, "generate: --eos %d is neither -1 nor a token id in [0, %d)", a->eos,
             b.m.cfg.vocab_size);
  int *out;   /* (S, max_new) the new ids of every prompt */
  int *n_out; /* (S) how many each prompt got (fewer than max_new after --eos) */
  GORP_ALLOC(out, (size_t)b.S * a->max_new, "generated ids");
  GORP_ALLOC(n_out, b.S, "generated lengths");
  long total_new = 0;
  const double t0 = proc_now_s();
  for (int s = 0; s < b.S; s++) { /* one prompt at a time, as evaluation decodes */
    const int *prompt = b.ids + (size_t)s * b.T;
    GORP_CALL(model_generate(&b.m, &prompt, &b.T, 1, a->max_new, a->eos,
                             out + (size_t)s * a->max_new, &n_out[s]));
    total_new += n_out[s];
  }
  const double total_s = proc_now_s() - t0;
  FILE *f = a->out ? fopen(a->out, "w") : stdout;
  if (!f) GORP_ERR(GORP_EIO, "%s: cannot create: %s", a->out, strerror(errno));
  for (int s = 0; s < b.S; s++) {
    for (int i = 0; i < n_out[s]; i++)
      fprintf(f, i ? " %d" : "%d", out[(size_t)s * a->max_new + i]);
    fputc('\n', f);
  }
  if (a->out && fclose(f)) GORP_ERR(GORP_EIO, "%s: cannot write: %s", a->out, strerror(errno));
  if (a->time)
    printf("generate-time sequences=%d prompt_len=%d new_tokens=%ld total_s=%.6f "
           "new_tokens_per_s=%.2f peak_rss_mb=%.1f\n",
           b.S, b.T, total_new, total_s, total_new / total_s, proc_peak_rss_mb());
  free(out);
  free(n_out);
  batch_free(&b);
  return GORP_OK;
}

int cmd_logits(int argc, char **argv) {
  numerics_args a;
  GORP_CALL(parse_args(&a, argc, argv));
  return run_logits(&a);
}

int cmd_grad(int argc, char **argv) {
  numerics_args a;
  GORP_CALL(parse_args(&a, argc, argv));
  return run_grad(&a);
}

int cmd_fit(int argc, char **argv) {
  numerics_args a;
  GORP_CALL(parse_args(&a, argc, argv));
  return run_fit(&a);
}

int cmd_generate(int argc, char **argv) {
  numerics_args a;
  GORP_CALL(parse_args(&a, argc, argv));
  return run_generate(&a);
}
