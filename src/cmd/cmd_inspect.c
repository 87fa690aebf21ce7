/* gorp inspect FILE.h5 [--verify]: a readable summary of a model file, checkpoint or a run's
 * results.h5 (config,
 * tasks done, shapes, basis sizes per module and task, accuracy matrix); --verify reads every
 * dataset back and checks its crc32, then reads a checkpoint by the resume's own loader (on a
 * trainer built from its stored config) and a model file by modelfile_load, so that it accepts
 * exactly what they accept. Serial, no MPI. The files are read by ckpt.h and modelfile.h; this
 * file only prints. */
#include "gorp/ckpt.h"
#include "gorp/cl_ckpt.h"
#include "gorp/cmd.h"
#include "gorp/err.h"
#include "gorp/h5io.h"
#include "gorp/modelfile.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
  /* a lean checkpoint resumes on its base's weights: read them as model.init would be */
  modelfile_base b;
  int lean = 0;
  if (!rc) rc = modelfile_read_base(f, path, &b, &lean);
  if (!rc) rc = lean ? modelfile_load(&m, b.resolved) : model_create(&m, &mc);
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

/* A lean checkpoint's base model file: where, its checksum, and whether it is there and still
 * holds those weights (from its crc32 attributes; --verify reads the data too). */
static int print_base_file(hid_t f, const char *path) {
  modelfile_base b;
  int lean;
  GORP_CALL(modelfile_read_base(f, path, &b, &lean));
  if (!lean) return GORP_OK;
  printf("lean: the frozen weights are those of the base model file %s (model.init %s), "
         "checksum 0x%08x: ",
         b.resolved, b.path, b.checksum);
  struct stat st;
  uint32_t now;
  if (stat(b.resolved, &st) || !S_ISREG(st.st_mode))
    printf("NOT FOUND\n");
  else if (modelfile_file_checksum(b.resolved, &now))
    printf("found, but unreadable (see above)\n");
  else if (now != b.checksum)
    printf("found, but it holds OTHER weights (checksum 0x%08x)\n", now);
  else
    printf("found, matches\n");
  return GORP_OK;
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

/* The matrix `name` of f under the heading `what` (accuracy or in-list). */
static void print_matrix(hid_t f, const char *name, const char *what, const char *path) {
  double *a;
  int rows, cols;
  ckpt_read_matrix(f, name, path, &a, &rows, &cols);
  if (!a) return;
  printf("%s matrix (%%; row 0 zero-shot, row j after task j; - = not measured)\n", what);
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
  print_matrix(f, "results/acc_matrix", "accuracy", path);
  return rc;
}

/* results.h5's history: times per task and row, the config's size, the loss curves (steps, first
 * and last loss each). */
static int print_history(hid_t f, const char *path) {
  const char *times[2] = {"train_seconds", "eval_seconds"};
  const hid_t run = H5Lexists(f, "run", H5P_DEFAULT) > 0 ? H5Gopen2(f, "run", H5P_DEFAULT) : -1;
  for (int i = 0; i < 2 && run >= 0; i++) {
    double v[1024];
    int n;
    if (H5Aexists(run, times[i]) <= 0 ||
        h5io_read_nums_attr(run, "/run", times[i], 1, H5T_NATIVE_DOUBLE, v, 1024, &n, path))
      continue;
    printf("%-13s", times[i]);
    for (int k = 0; k < n; k++) printf(v[k] == v[k] ? " %.2f" : " -", v[k]);
    printf("\n");
  }
  char *config = NULL;
  if (run >= 0 && H5Aexists(run, "config") > 0 &&
      !h5io_read_str_attr(run, "/run", "config", &config, path)) {
    int lines = 0;
    for (const char *c = config; *c; c++) lines += *c == '\n';
    printf("config        %d lines (the resolved config: attribute config of /run)\n", lines);
  }
  free(config);
  if (run >= 0) H5Gclose(run);
  if (H5Lexists(f, "loss_curves", H5P_DEFAULT) <= 0) return GORP_OK;
  hid_t g;
  GORP_CALL(h5io_open_group(f, "loss_curves", path, &g));
  H5G_info_t info;
  if (H5Gget_info(g, &info) < 0) {
    H5Gclose(g);
    GORP_ERR(GORP_EINPUT, "%s: group loss_curves is damaged", path);
  }
  printf("loss curves (steps: first -> last loss):");
  for (hsize_t i = 0; i < info.nlinks; i++) {
    char name[64];
    if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof(name), H5P_DEFAULT) <
        0)
      break;
    const hid_t ds = H5Dopen2(g, name, H5P_DEFAULT), sp = ds < 0 ? -1 : H5Dget_space(ds);
    const hssize_t len = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
    if (sp >= 0) H5Sclose(sp);
    if (ds >= 0) H5Dclose(ds);
    float *x = len > 0 ? malloc((size_t)len * sizeof(float)) : NULL;
    const hsize_t dim = (hsize_t)len;
    if (x && !h5io_read_floats(g, name, 1, &dim, x, path))
      printf(" %s %lld: %.4f -> %.4f;", name, (long long)len, x[0], x[len - 1]);
    else
      printf(" %s (unreadable);", name);
    free(x);
  }
  printf("\n");
  H5Gclose(g);
  return GORP_OK;
}

/* A run's results.h5 (docs/RESULTS.md): its run, its matrices and metrics; --verify checks every
 * dataset's crc32. */
static int inspect_results(hid_t f, const char *path, int verify) {
  const char *keys[3] = {"method", "order", "gorp_version"};
  printf("%s: gorp results file\n", path);
  for (int i = 0; i < 3; i++) {
    char *v = NULL;
    if (H5Aexists(f, keys[i]) > 0 && !h5io_read_str_attr(f, "/", keys[i], &v, path))
      printf("%-12s %s\n", keys[i], v);
    free(v);
  }
  uint64_t seed;
  if (!h5io_read_num_attr(f, "/", "seed", 0, H5T_NATIVE_UINT64, &seed, path))
    printf("%-12s %llu\n", "seed", (unsigned long long)seed);
  print_matrix(f, "acc_matrix", "accuracy", path);
  print_matrix(f, "in_list", "in-list", path);
  const char *metrics[4] = {"AP", "BWT", "FWT", "forgetting"};
  for (int i = 0; i < 4; i++) {
    double v;
    if (h5io_read_num_attr(f, "/", metrics[i], 1, H5T_NATIVE_DOUBLE, &v, path)) continue;
    if (v != v) /* a metric with an unmeasured term */
      printf("%s%s n/a", i ? "  " : "", metrics[i]);
    else
      printf("%s%s %.2f", i ? "  " : "", metrics[i], v);
  }
  printf("\n");
  GORP_CALL(print_history(f, path));
  ckpt_datasets x;
  GORP_CALL(ckpt_count_datasets(f, path, verify, &x));
  printf("%d datasets, %zu values", x.n, x.values);
  if (verify) printf("; verified %d, damaged %d", x.verified, x.bad);
  printf("\n");
  if (x.bad) GORP_ERR(GORP_EINPUT, "%s: %d damaged dataset(s) (named above)", path, x.bad);
  return GORP_OK;
}

static int inspect(const char *path, int verify) {
  hid_t f;
  char *kind;
  model_config mc;
  /* results.h5 carries its matrices at the root and no model: a file of its own kind */
  GORP_CALL(h5io_open_read(path, "file", &f));
  if (H5Aexists(f, "gorp_format_version") <= 0 && H5Lexists(f, "acc_matrix", H5P_DEFAULT) > 0) {
    const int rc = inspect_results(f, path, verify);
    H5Fclose(f);
    return rc;
  }
  H5Fclose(f);
  GORP_CALL(ckpt_inspect_open(path, &f, &kind, &mc));
  printf("%s: gorp %s file, format version %d\n", path, kind, MODELFILE_FORMAT_VERSION);
  printf("model: %d layers, hidden %d, intermediate %d, heads %d/%d (head dim %d), vocab %d, "
         "%s head\n",
         mc.num_layers, mc.hidden_size, mc.intermediate_size, mc.num_heads, mc.num_kv_heads,
         mc.head_dim, mc.vocab_size, mc.tie_embeddings ? "tied" : "untied");
  const int is_checkpoint = !strcmp(kind, "checkpoint");
  int rc = strcmp(kind, "model") ? GORP_OK : modelfile_print_adapters(f, path);
  free(kind);
  if (!rc) rc = print_base_file(f, path);
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
    {NULL, CMD_TEXT, offsetof(inspect_args, path), "FILE.h5",
     "a checkpoint, a model file or a run's results.h5", 1},
    {"verify", CMD_FLAG, offsetof(inspect_args, verify), NULL,
     "read every dataset back and check its crc32", 0},
};

const cmd_spec cmd_inspect_spec = {
    CMD_SPEC("inspect",
             "summarises a checkpoint, model file or results.h5; --verify checks every dataset's "
             "checksum",
             inspect_table, inspect_args, inspect_main),
    .serial = 1};
