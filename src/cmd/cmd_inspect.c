/* gorp inspect FILE.h5 [--verify]: a readable summary of a model file or checkpoint (config,
 * tasks done, shapes, basis sizes per module and task, accuracy matrix); --verify reads every
 * dataset back and checks its crc32, then reads a checkpoint by the resume's own loader (on a
 * trainer built from its stored config) and a model file by modelfile_load, so that it accepts
 * exactly what they accept. Serial, no MPI. The files are read by ckpt.h and modelfile.h; this
 * file only prints. */
#include "gorp/ckpt.h"
#include "gorp/cl_ckpt.h"
#include "gorp/cmd.h"
#include "gorp/err.h"
#include "gorp/modelfile.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int config_from_text(const char *text, const char *path, gorp_config *c) {
  const char *dir = getenv("TMPDIR");
  char tmp[4200];
  snprintf(tmp, sizeof(tmp), "%s/gorp_config_XXXXXX", dir && dir[0] ? dir : "/tmp");
  const int fd = mkstemp(tmp);
  if (fd < 0) GORP_ERR(GORP_EIO, "cannot create a temporary file %s: %s", tmp, strerror(errno));
  const size_t len = strlen(text);
  const int bad = write(fd, text, len) != (ssize_t)len;
  close(fd);
  char *applied[] = {"data.order=", "data.substitute="};
  int rc = bad ? GORP_ERROR(GORP_EIO, "cannot write %s", tmp) : config_load(c, tmp, applied, 2);
  unlink(tmp);
  if (rc) GORP_ERR(rc, "%s: its /config text is not a valid config (see above)", path);
  return GORP_OK;
}

/* Checks model file path by the code every --model option and model.init run. */
static int verify_model(const char *path) {
  model m;
  GORP_CALL(modelfile_load(&m, path));
  model_free(&m);
  return GORP_OK;
}

/* Checks checkpoint path by the code a resume runs, on a model and trainer built from the config
 * and architecture stored in it. */
static int verify_checkpoint(hid_t f, const char *path) {
  char *text;
  int rc = ckpt_config_text(f, path, &text);
  gorp_config c = {0};
  if (!rc) rc = config_from_text(text, path, &c);
  free(text);
  model_config mc;
  model m = {0};
  if (!rc) rc = modelfile_read_config(path, &mc);
  if (!rc) rc = model_create(&m, &mc);
  trainer t = {0};
  int made = 0;
  if (!rc) made = !(rc = trainer_create(&t, &m, &c, c.run.method, c.data.n_tasks, NULL));
  cl_results res = {.T = c.data.n_tasks};
  if (!rc && (!(res.acc = calloc((size_t)(res.T + 1) * res.T, sizeof(double))) ||
              !(res.in_list = calloc((size_t)(res.T + 1) * res.T, sizeof(double)))))
    rc = GORP_ERROR(GORP_EMEM, "out of memory verifying %s", path);
  if (!rc) rc = cl_ckpt_verify(path, &t, &res);
  free(res.acc);
  free(res.in_list);
  if (made) trainer_free(&t);
  model_free(&m);
  config_free(&c);
  return rc;
}

static int print_bases(hid_t f) {
  ckpt_basis *b;
  int n;
  GORP_CALL(ckpt_read_bases(f, &b, &n));
  if (b) printf("GORP bases (%d matrices): columns in use / axis length, per task end column\n", n);
  for (int i = 0; i < n; i++) {
    printf("  %-48s %4lld", b[i].name, b[i].columns);
    if (b[i].len >= 0) printf(" / %lld", b[i].len);
    printf("  ends:");
    for (int t = 0; t < b[i].n_ends; t++) printf(" %lld", b[i].ends[t]);
    printf("\n");
  }
  free(b);
  return GORP_OK;
}

static void print_matrix(hid_t f, const char *path) {
  double *a;
  int rows, cols;
  ckpt_read_acc(f, path, &a, &rows, &cols);
  if (!a) return;
  printf("accuracy matrix (row 0 zero-shot, row j after task j; - = not measured)\n");
  for (int r = 0; r < rows; r++) {
    printf("  after %-2d", r);
    for (int c = 0; c < cols; c++)
      if (a[r * cols + c] != a[r * cols + c])
        printf(" %6s", "-");
      else
        printf(" %6.1f", a[r * cols + c]);
    printf("\n");
  }
  free(a);
}

static int print_checkpoint(hid_t f, const char *path) {
  ckpt_header h;
  ckpt_read_header(f, path, &h);
  printf("method %s; ", h.method ? h.method : "?");
  if (h.task_done && h.eval_task)
    printf("tasks done: %lld; the evaluation row after them was stopped at task %lld\n",
           (long long)h.task + 1, (long long)h.eval_task);
  else if (h.task_done)
    printf("tasks done: %lld\n", (long long)h.task + 1);
  else
    printf("in task %lld, %lld steps taken\n", (long long)h.task + 1, (long long)h.step);
  printf("LoRA pairs: %lld; config hash %016llx, run hash %016llx\n", (long long)h.lora_pairs,
         (unsigned long long)h.hash, (unsigned long long)h.run_hash);
  if (h.threads[0])
    printf("written with %lld OpenMP / %lld OpenBLAS threads per rank\n", (long long)h.threads[0],
           (long long)h.threads[1]);
  if (h.config_text) printf("--- config ---\n%s--------------\n", h.config_text);
  ckpt_header_free(&h);
  const int rc = print_bases(f);
  print_matrix(f, path);
  return rc;
}

static int inspect(const char *path, int verify) {
  hid_t f;
  char *kind;
  model_config mc;
  GORP_CALL(ckpt_inspect_open(path, &f, &kind, &mc));
  printf("%s: gorp %s file, format version %d\n", path, kind, MODELFILE_FORMAT_VERSION);
  printf("model: %d layers, hidden %d, intermediate %d, heads %d/%d (head dim %d), vocab %d, "
         "%s head\n",
         mc.num_layers, mc.hidden_size, mc.intermediate_size, mc.num_heads, mc.num_kv_heads,
         mc.head_dim, mc.vocab_size, mc.tie_embeddings ? "tied" : "untied");
  const int is_checkpoint = !strcmp(kind, "checkpoint");
  int rc = strcmp(kind, "model") ? GORP_OK : modelfile_print_adapters(f, path);
  free(kind);
  if (!rc && is_checkpoint) rc = print_checkpoint(f, path);
  ckpt_datasets x;
  if (!rc) rc = ckpt_count_datasets(f, path, verify, &x);
  if (!rc) {
    printf("%d datasets, %zu values", x.n, x.values);
    if (verify)
      printf("; verified %d, damaged %d\n", x.verified, x.bad);
    else
      printf(" (--verify checks every checksum)\n");
  }
  if (!rc && x.bad)
    rc = GORP_ERROR(GORP_EINPUT, "%s: %d damaged dataset(s) (named above)", path, x.bad);
  /* then what a resume (or a --model option) reads, by the same code */
  if (!rc && verify) rc = is_checkpoint ? verify_checkpoint(f, path) : verify_model(path);
  H5Fclose(f);
  GORP_CALL(rc);
  if (verify) printf("%s: %s\n", path, is_checkpoint ? "a resume accepts it" : "loads as a model");
  return GORP_OK;
}

typedef struct inspect_args {
  const char *path;
  int verify;
} inspect_args;

static int inspect_main(const void *args) {
  const inspect_args *a = args;
  return inspect(a->path, a->verify);
}

static const cmd_arg inspect_table[] = {
    {NULL, CMD_TEXT, offsetof(inspect_args, path), "FILE.h5", "a checkpoint or a model file", 1},
    {"verify", CMD_FLAG, offsetof(inspect_args, verify), NULL,
     "read every dataset back and check its crc32", 0},
};

const cmd_spec cmd_inspect_spec = {
    CMD_SPEC("inspect",
             "summarises a checkpoint or model file; --verify checks every dataset's checksum",
             inspect_table, inspect_args, inspect_main),
    .serial = 1};
