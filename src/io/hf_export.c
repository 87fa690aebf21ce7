/* gorp models -> Hugging Face transformers and PEFT folders (see hf_export.h): the staging folder
 * and its publication, config.json, the weights (sharded past a size, like transformers'
 * save_pretrained), the tokenizer files, and the PEFT adapters of a run's model.h5 with the check
 * that the run's model.init is the base they were trained on.
 * Not for: the file formats themselves (safetensors_write.c, modelfile.c). */
#include "gorp/hf_export.h"

#include "gorp/ckpt.h"
#include "gorp/config.h"
#include "gorp/err.h"
#include "gorp/fsutil.h"
#include "gorp/h5io.h"
#include "gorp/lora.h"
#include "gorp/model.h"
#include "gorp/modelfile.h"
#include "gorp/safetensors.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------ */
/* the staging folder: OUT_DIR.tmp.XXXXXX beside OUT_DIR, one level of subfolders */

typedef struct stage {
  char out[PATH_MAX], dir[PATH_MAX];
  int force;
} stage;

/* The names an export writes (what --force may replace or remove as stale in OUT_DIR). */
static const char *const export_names[] = {"config.json",
                                           "model.safetensors",
                                           "model.safetensors.index.json",
                                           "model-*-of-*.safetensors",
                                           "tokenizer.json",
                                           "tokenizer_config.json",
                                           "adapter_config.json",
                                           "adapter_model.safetensors"};

static int is_export_name(const char *name) {
  for (size_t i = 0; i < sizeof(export_names) / sizeof(export_names[0]); i++)
    if (!fnmatch(export_names[i], name, 0)) return 1;
  return 0;
}

/* *n = the entries of dir other than . and .. (-1 when dir does not exist) */
static int count_entries(const char *dir, int *n) {
  DIR *d = opendir(dir);
  *n = -1;
  if (!d && errno == ENOENT) return GORP_OK;
  if (!d) GORP_ERR(GORP_EINPUT, "cannot read directory %s: %s", dir, strerror(errno));
  *n = 0;
  for (struct dirent *e; (e = readdir(d));) *n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
  closedir(d);
  return GORP_OK;
}

/* out may be absent or an empty folder; one that holds files only with force. Checked before the
 * model is read (a refusal costs nothing) and again when the staging folder is made. */
static int check_out(const char *out, int force) {
  struct stat st;
  if (!stat(out, &st) && !S_ISDIR(st.st_mode))
    GORP_ERR(GORP_EUSAGE, "output %s exists and is not a directory", out);
  int n;
  GORP_CALL(count_entries(out, &n));
  if (n > 0 && !force)
    GORP_ERR(GORP_EUSAGE,
             "output directory %s exists and holds %d entr%s; choose a new one, or --force to "
             "replace the exported files in it",
             out, n, n == 1 ? "y" : "ies");
  return GORP_OK;
}

static int stage_begin(stage *s, const char *out, int force) {
  s->force = force;
  GORP_CALL(fs_path_fmt(s->out, sizeof(s->out), "%s", out));
  size_t len = strlen(s->out);
  while (len > 1 && s->out[len - 1] == '/') s->out[--len] = '\0';
  GORP_CALL(check_out(s->out, force));
  GORP_CALL(fs_path_fmt(s->dir, sizeof(s->dir), "%s.tmp.XXXXXX", s->out));
  if (!mkdtemp(s->dir))
    GORP_ERR(GORP_EIO, "cannot create the staging directory %s: %s", s->dir, strerror(errno));
  if (chmod(s->dir, 0755)) { /* mkdtemp's 0700 would become OUT_DIR's mode */
    const int err = errno;
    rmdir(s->dir);
    GORP_ERR(GORP_EIO, "cannot set the mode of %s: %s", s->dir, strerror(err));
  }
  return GORP_OK;
}

/* Removes dir's files and subfolders one level deep, then dir (an abandoned staging folder). Best
 * effort: it runs on the way out of an error, whose message is the one to report. */
static void remove_tree(const char *dir, int depth) {
  DIR *d = opendir(dir);
  for (struct dirent *e; d && (e = readdir(d));) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char p[PATH_MAX];
    if (fs_path_fmt(p, sizeof(p), "%s/%s", dir, e->d_name)) continue;
    struct stat st;
    if (depth < 1 && !lstat(p, &st) && S_ISDIR(st.st_mode))
      remove_tree(p, depth + 1);
    else
      unlink(p);
  }
  if (d) closedir(d);
  rmdir(dir);
}

/* --force into an existing folder: the export files of dst that src does not have are stale (a
 * sharded export replacing a single file, or the reverse) and go; then each file of src is
 * renamed over its name in dst. */
static int merge_into(const char *src, const char *dst, int depth) {
  GORP_CALL(fs_mkdirs(dst));
  DIR *d = opendir(dst);
  if (!d) GORP_ERR(GORP_EIO, "cannot read directory %s: %s", dst, strerror(errno));
  int rc = GORP_OK;
  for (struct dirent *e; !rc && (e = readdir(d));) {
    char ps[PATH_MAX], pd[PATH_MAX];
    if (!is_export_name(e->d_name)) continue;
    rc = fs_path_fmt(ps, sizeof(ps), "%s/%s", src, e->d_name);
    if (!rc) rc = fs_path_fmt(pd, sizeof(pd), "%s/%s", dst, e->d_name);
    if (!rc && access(ps, F_OK) && unlink(pd))
      rc = GORP_ERROR(GORP_EIO, "cannot remove the stale %s: %s", pd, strerror(errno));
  }
  closedir(d);
  GORP_CALL(rc);
  d = opendir(src);
  if (!d) GORP_ERR(GORP_EIO, "cannot read directory %s: %s", src, strerror(errno));
  for (struct dirent *e; !rc && (e = readdir(d));) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char ps[PATH_MAX], pd[PATH_MAX];
    rc = fs_path_fmt(ps, sizeof(ps), "%s/%s", src, e->d_name);
    if (!rc) rc = fs_path_fmt(pd, sizeof(pd), "%s/%s", dst, e->d_name);
    struct stat st;
    if (!rc && depth < 1 && !lstat(ps, &st) && S_ISDIR(st.st_mode))
      rc = merge_into(ps, pd, depth + 1);
    else if (!rc && rename(ps, pd))
      rc = GORP_ERROR(GORP_EIO, "cannot rename %s to %s: %s", ps, pd, strerror(errno));
  }
  closedir(d);
  return rc;
}

/* The staged export becomes OUT_DIR: one rename when OUT_DIR is new or empty, file by file into
 * an existing one (--force). */
static int stage_commit(stage *s) {
  int n;
  GORP_CALL(count_entries(s->out, &n));
  if (n == 0 && rmdir(s->out))
    GORP_ERR(GORP_EIO, "cannot replace the empty directory %s: %s", s->out, strerror(errno));
  if (n <= 0) {
    if (rename(s->dir, s->out))
      GORP_ERR(GORP_EIO, "cannot rename %s to %s: %s", s->dir, s->out, strerror(errno));
  } else {
    GORP_CALL(merge_into(s->dir, s->out, 0));
    remove_tree(s->dir, 0);
  }
  /* the rename is on disk once the folder holding OUT_DIR is (fs_publish's last step) */
  char parent[PATH_MAX];
  GORP_CALL(fs_path_fmt(parent, sizeof(parent), "%s/..", s->out));
  return fs_sync_dir(parent);
}

/* ------------------------------------------------------------------------------------------ */
/* files */

static int write_json(const char *dir, const char *name, cJSON *j) {
  char path[PATH_MAX];
  GORP_CALL(fs_path_fmt(path, sizeof(path), "%s/%s", dir, name));
  char *text = j ? cJSON_Print(j) : NULL;
  if (!text) GORP_ERR(GORP_EMEM, "out of memory building %s", path);
  const int rc = fs_write_file(path, text, strlen(text));
  cJSON_free(text);
  return rc;
}

static int write_config(const model *m, const char *dir) {
  char path[PATH_MAX];
  GORP_CALL(fs_path_fmt(path, sizeof(path), "%s/config.json", dir));
  char *text = modelfile_hf_config(&m->cfg, m->eos, m->n_eos);
  if (!text) GORP_ERR(GORP_EMEM, "out of memory building %s", path);
  const int rc = fs_write_file(path, text, strlen(text));
  cJSON_free(text);
  return rc;
}

/* e[0..n): m's tensors under their HF names (the model is whole: one rank) */
static void model_entries(const model *m, safetensors_entry *e) {
  for (int i = 0; i < m->n_tensors; i++) {
    const param_tensor *t = &m->tensors[i];
    e[i] = (safetensors_entry){t->name, t->ndim, {t->full[0], t->full[1]}, m->params + t->offset};
  }
}

/* The index transformers reads: {"metadata": {"total_size"}, "weight_map": {tensor: shard}}. */
static int write_shards(const char *dir, const safetensors_entry *e, int n, const int *shard,
                        int n_shards) {
  cJSON *root = cJSON_CreateObject(), *meta = cJSON_AddObjectToObject(root, "metadata"),
        *map = cJSON_AddObjectToObject(root, "weight_map");
  uint64_t total = 0;
  int rc = meta && map ? GORP_OK : GORP_ERROR(GORP_EMEM, "out of memory building the index");
  for (int s = 0, first = 0; !rc && s < n_shards; s++) {
    int last = first;
    while (last < n && shard[last] == s) last++;
    char name[64], path[PATH_MAX];
    snprintf(name, sizeof(name), "model-%05d-of-%05d.safetensors", s + 1, n_shards);
    rc = fs_path_fmt(path, sizeof(path), "%s/%s", dir, name);
    if (!rc) rc = safetensors_write_f32(path, e + first, last - first);
    for (int i = first; !rc && i < last; i++) {
      total += safetensors_entry_bytes(&e[i]);
      if (!cJSON_AddStringToObject(map, e[i].name, name))
        rc = GORP_ERROR(GORP_EMEM, "out of memory building the index");
    }
    first = last;
  }
  if (!rc && !cJSON_AddNumberToObject(meta, "total_size", (double)total))
    rc = GORP_ERROR(GORP_EMEM, "out of memory building the index");
  if (!rc) rc = write_json(dir, "model.safetensors.index.json", root);
  cJSON_Delete(root);
  return rc;
}

/* model.safetensors, or shards of at most max bytes each (a larger tensor alone in its shard, as
 * transformers does) with their index. */
static int write_weights(const model *m, const char *dir, uint64_t max, int *n_shards) {
  safetensors_entry *e;
  int *shard;
  GORP_ALLOC(e, m->n_tensors, "the exported tensor list");
  shard = malloc((size_t)m->n_tensors * sizeof(*shard));
  int rc = shard ? GORP_OK : GORP_ERROR(GORP_EMEM, "out of memory for the shard list");
  model_entries(m, e);
  uint64_t used = 0;
  *n_shards = 1;
  for (int i = 0; !rc && i < m->n_tensors; i++) {
    const uint64_t b = safetensors_entry_bytes(&e[i]);
    if (used && used + b > max) {
      (*n_shards)++;
      used = 0;
    }
    shard[i] = *n_shards - 1;
    used += b;
  }
  char path[PATH_MAX];
  if (!rc && *n_shards == 1) {
    rc = fs_path_fmt(path, sizeof(path), "%s/model.safetensors", dir);
    if (!rc) rc = safetensors_write_f32(path, e, m->n_tensors);
  } else if (!rc) {
    rc = write_shards(dir, e, m->n_tensors, shard, *n_shards);
  }
  free(shard);
  free(e);
  return rc;
}

/* tokenizer.json as given, and a tokenizer_config.json that makes AutoTokenizer load it as a
 * PreTrainedTokenizerFast (no LLaMA-specific defaults such as an added <s>). */
static int write_tokenizer(const model *m, const char *tokenizer, const char *dir) {
  char *text, path[PATH_MAX];
  size_t len;
  GORP_CALL(fs_read_regular(tokenizer, "tokenizer", FS_MAX_TOKENIZER, &text, &len));
  int rc = fs_path_fmt(path, sizeof(path), "%s/tokenizer.json", dir);
  if (!rc) rc = fs_write_file(path, text, len);
  free(text);
  GORP_CALL(rc);
  cJSON *j = cJSON_CreateObject();
  int ok = j && cJSON_AddStringToObject(j, "tokenizer_class", "PreTrainedTokenizerFast") &&
           cJSON_AddNumberToObject(j, "model_max_length", m->cfg.max_seq);
  rc = ok ? write_json(dir, "tokenizer_config.json", j)
          : GORP_ERROR(GORP_EMEM, "out of memory building tokenizer_config.json");
  cJSON_Delete(j);
  return rc;
}

/* The whole transformers folder of m into dir (a folder of the staging tree). */
static int write_model(const model *m, const char *dir, const char *shown, const hf_export_opts *o,
                       const char *tokenizer) {
  int n_shards;
  GORP_CALL(fs_mkdirs(dir));
  GORP_CALL(write_config(m, dir));
  GORP_CALL(write_weights(m, dir, o->max_shard_bytes, &n_shards));
  if (tokenizer) GORP_CALL(write_tokenizer(m, tokenizer, dir));
  printf("  %s: config.json, %d tensors (%zu parameters) in %d safetensors file%s%s\n", shown,
         m->n_tensors, m->n_params, n_shards, n_shards > 1 ? "s + index" : "",
         tokenizer ? ", tokenizer.json + tokenizer_config.json" : ", no tokenizer");
  return GORP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* run directories */

/* The resolved config text of run_dir, stored in the checkpoint its checkpoints/LATEST names
 * (malloc'd). */
static int run_config(const char *run_dir, char **text) {
  char latest[PATH_MAX], name[256], path[PATH_MAX];
  GORP_CALL(fs_path_fmt(latest, sizeof(latest), "%s/checkpoints/LATEST", run_dir));
  char *line;
  size_t len;
  GORP_CALL(fs_read_regular(latest, "run directory's checkpoint list", 4096, &line, &len));
  const int ok = sscanf(line, "%255s", name) == 1;
  free(line);
  if (!ok) GORP_ERR(GORP_EINPUT, "%s names no checkpoint", latest);
  GORP_CALL(fs_path_fmt(path, sizeof(path), "%s/checkpoints/%s", run_dir, name));
  hid_t file;
  GORP_CALL(h5io_open_read(path, "checkpoint", &file));
  const int rc = ckpt_config_text(file, path, text);
  H5Fclose(file);
  return rc;
}

/* The run's tokenizer.json (data.tokenizer when it names a file: a path is stored absolute; the
 * keyword byte and the synthetic suite's generated one have none) into tok[PATH_MAX], or "". */
static void run_tokenizer(const char *config, char *tok) {
  char format[64];
  if (!config_text_get(config, "data.tokenizer", tok, PATH_MAX) || tok[0] != '/' ||
      (config_text_get(config, "data.format", format, sizeof(format)) &&
       !strcmp(format, "synthetic")))
    tok[0] = '\0';
}

/* src's model file: src itself, or RUN_DIR/model.h5 (then *is_run = 1). */
static int model_path(const char *src, char *path, int *is_run) {
  struct stat st;
  *is_run = !stat(src, &st) && S_ISDIR(st.st_mode);
  if (*is_run) return fs_path_fmt(path, PATH_MAX, "%s/model.h5", src);
  return fs_path_fmt(path, PATH_MAX, "%s", src);
}

static int export_model(const model *m, const char *out, const hf_export_opts *o,
                        const char *tokenizer) {
  stage s;
  GORP_CALL(stage_begin(&s, out, o->force));
  int rc = write_model(m, s.dir, out, o, tokenizer);
  if (!rc) rc = stage_commit(&s);
  if (rc) remove_tree(s.dir, 0);
  return rc;
}

int hf_export(const char *src, const char *out_dir, const hf_export_opts *o) {
  char path[PATH_MAX], tok[PATH_MAX] = "";
  int is_run;
  GORP_CALL(model_path(src, path, &is_run));
  GORP_CALL(fs_check_regular(path, is_run ? "run directory's model file" : "model file", NULL));
  GORP_CALL(check_out(out_dir, o->force));
  if (o->tokenizer) {
    GORP_CALL(fs_path_fmt(tok, sizeof(tok), "%s", o->tokenizer));
  } else if (is_run) {
    char *config;
    GORP_CALL(run_config(src, &config));
    run_tokenizer(config, tok);
    free(config);
  }
  if (tok[0]) GORP_CALL(fs_check_regular(tok, "tokenizer", NULL));
  model m;
  GORP_CALL(modelfile_load(&m, path));
  printf("export-hf: %s -> %s\n", path, out_dir);
  const int rc = export_model(&m, out_dir, o, tok[0] ? tok : NULL);
  model_free(&m);
  return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* PEFT adapters */

/* /adapters of a run's model.h5 (modelfile.h) */
typedef struct adapters {
  int r, pairs;
  double alpha;
  unsigned targets; /* lora.h's bits */
  char **tasks;     /* (pairs) what each pair trained on */
  float *ab;        /* (pairs, L, targets present, A (r, in) then B (out, r)) */
  size_t pair_floats;
} adapters;

static void adapters_free(adapters *a) {
  for (int p = 0; a->tasks && p < a->pairs; p++) free(a->tasks[p]);
  free(a->tasks);
  free(a->ab);
  memset(a, 0, sizeof(*a));
}

static int parse_modules(const char *list, unsigned *bits, const char *path) {
  *bits = 0;
  for (const char *p = list; *p;) {
    const size_t n = strcspn(p, ",");
    int found = -1;
    for (int tg = 0; tg < LORA_N_TARGETS; tg++)
      if (strlen(lora_module_names[tg]) == n && !strncmp(p, lora_module_names[tg], n)) found = tg;
    if (found < 0)
      GORP_ERR(GORP_EINPUT, "%s: /adapters target_modules names '%.*s', not a linear of the model",
               path, (int)n, p);
    *bits |= 1u << found;
    p += n + (p[n] == ',');
  }
  return GORP_OK;
}

/* The floats of pair p at (layer, target): A (r, in) then B (out, r). */
static float *factor(const adapters *a, const model *m, int p, int layer, int target) {
  float *x = a->ab + (size_t)p * a->pair_floats;
  for (int l = 0; l <= layer; l++)
    for (int tg = 0; tg < LORA_N_TARGETS; tg++) {
      if (!(a->targets >> tg & 1)) continue;
      if (l == layer && tg == target) return x;
      const param_tensor *t = &m->tensors[model_linear_tensor(l, tg)];
      x += (size_t)a->r * (size_t)(t->full[0] + t->full[1]);
    }
  return x;
}

static int read_pair(hid_t file, const model *m, adapters *a, int p, const char *path) {
  char group[32];
  snprintf(group, sizeof(group), "/adapters/task_%02d", p + 1);
  hid_t pg;
  GORP_CALL(h5io_open_group(file, group, path, &pg));
  int rc = h5io_read_str_attr(pg, group, "tasks", &a->tasks[p], path);
  for (int l = 0; !rc && l < m->cfg.num_layers; l++)
    for (int tg = 0; !rc && tg < LORA_N_TARGETS; tg++) {
      if (!(a->targets >> tg & 1)) continue;
      const param_tensor *t = &m->tensors[model_linear_tensor(l, tg)];
      const hsize_t da[2] = {(hsize_t)a->r, (hsize_t)t->full[1]},
                    db[2] = {(hsize_t)t->full[0], (hsize_t)a->r};
      float *x = factor(a, m, p, l, tg);
      char name[MODEL_NAME_MAX + 16];
      snprintf(name, sizeof(name), "model.layers.%d.%s.lora_A", l, lora_module_names[tg]);
      rc = h5io_read_floats(pg, name, 2, da, x, path);
      name[strlen(name) - 1] = 'B';
      if (!rc) rc = h5io_read_floats(pg, name, 2, db, x + da[0] * da[1], path);
    }
  H5Gclose(pg);
  return rc;
}

static int read_adapters_open(hid_t file, const model *m, adapters *a, const char *path) {
  const htri_t has = H5Lexists(file, "adapters", H5P_DEFAULT);
  if (has <= 0)
    GORP_ERR(GORP_EINPUT,
             "%s has no /adapters: the run trained no LoRA pairs (a full-weight method); gorp "
             "export-hf exports its model",
             path);
  hid_t g;
  GORP_CALL(h5io_open_group(file, "adapters", path, &g));
  char *modules = NULL;
  int rc = h5io_read_num_attr(g, "/adapters", "r", 0, H5T_NATIVE_INT, &a->r, path);
  if (!rc) rc = h5io_read_num_attr(g, "/adapters", "alpha", 1, H5T_NATIVE_DOUBLE, &a->alpha, path);
  if (!rc) rc = h5io_read_num_attr(g, "/adapters", "pairs", 0, H5T_NATIVE_INT, &a->pairs, path);
  if (!rc) rc = h5io_read_str_attr(g, "/adapters", "target_modules", &modules, path);
  H5Gclose(g);
  if (!rc) rc = parse_modules(modules, &a->targets, path);
  free(modules);
  GORP_CALL(rc);
  GORP_CHECK(a->r >= 1 && a->r <= MODEL_MAX_DIM && a->pairs >= 1 && a->pairs <= 1000 &&
                 a->targets && a->alpha > 0,
             GORP_EINPUT, "%s: /adapters has r %d, %d pairs, alpha %g: not a LoRA run's adapters",
             path, a->r, a->pairs, a->alpha);
  for (int l = 0; l < m->cfg.num_layers; l++)
    for (int tg = 0; tg < LORA_N_TARGETS; tg++)
      if (a->targets >> tg & 1) {
        const param_tensor *t = &m->tensors[model_linear_tensor(l, tg)];
        a->pair_floats += (size_t)a->r * (size_t)(t->full[0] + t->full[1]);
      }
  a->tasks = calloc((size_t)a->pairs, sizeof(*a->tasks));
  a->ab = malloc((size_t)a->pairs * a->pair_floats * sizeof(float));
  if (!a->tasks || !a->ab) GORP_ERR(GORP_EMEM, "out of memory for the adapters of %s", path);
  for (int p = 0; p < a->pairs; p++) GORP_CALL(read_pair(file, m, a, p, path));
  return GORP_OK;
}

static int read_adapters(const char *path, const model *m, adapters *a) {
  memset(a, 0, sizeof(*a));
  hid_t file;
  GORP_CALL(h5io_open_read(path, "model file", &file));
  const int rc = read_adapters_open(file, m, a, path);
  H5Fclose(file);
  if (rc) adapters_free(a);
  return rc;
}

/* The target of tensor i of m when it carries adapters (its layer in *layer), else -1. */
static int tensor_target(const model *m, const adapters *a, int i, int *layer) {
  for (int l = 0; l < m->cfg.num_layers; l++)
    for (int tg = 0; tg < LORA_N_TARGETS; tg++)
      if (a->targets >> tg & 1 && model_linear_tensor(l, tg) == i) {
        *layer = l;
        return tg;
      }
  return -1;
}

/* The largest |merged - (base + alpha/r sum_p B_p A_p)| of one target linear (out, in), and the
 * largest |merged|, in float64 (the sum built in a (out, in) scratch). */
static int merge_error(const model *merged, const model *base, const adapters *a, int i, int layer,
                       int tg, double *err, double *scale) {
  const param_tensor *t = &merged->tensors[i];
  const size_t out = (size_t)t->full[0], in = (size_t)t->full[1], r = (size_t)a->r;
  const float *w = merged->params + t->offset, *w0 = base->params + t->offset;
  double *v;
  GORP_ALLOC(v, out * in, "the merge check of one weight");
  for (size_t x = 0; x < out * in; x++) v[x] = 0.0;
  for (int p = 0; p < a->pairs; p++) {
    const float *A = factor(a, merged, p, layer, tg), *B = A + r * in;
    for (size_t o = 0; o < out; o++)
      for (size_t k = 0; k < r; k++) {
        const double b = B[o * r + k];
        for (size_t j = 0; j < in; j++) v[o * in + j] += b * A[k * in + j];
      }
  }
  const double s = a->alpha / a->r;
  *err = *scale = 0.0;
  for (size_t x = 0; x < out * in; x++) {
    const double d = fabs(w[x] - (w0[x] + s * v[x])), m = fabs(w[x]);
    if (d > *err) *err = d;
    if (m > *scale) *scale = m;
  }
  free(v);
  return GORP_OK;
}

/* base must be the weights the adapters were trained on: every tensor without adapters equal to
 * model.h5's bit for bit, every target linear model.h5's up to the float32 rounding of the merge
 * (measured ~1e-7 of max|W|; a weight that training moved differs by orders more). */
static int check_base(const model *merged, const model *base, const adapters *a, const char *path,
                      const char *init) {
  int n_keys;
  const model_key *k = model_config_keys(&n_keys);
  for (int i = 0; i < n_keys; i++)
    if (model_key_get(&merged->cfg, &k[i]) != model_key_get(&base->cfg, &k[i]))
      GORP_ERR(GORP_EINPUT, "%s has %s = %g, its model.init %s %g: not the base it was trained on",
               path, k[i].hf, model_key_get(&merged->cfg, &k[i]), init,
               model_key_get(&base->cfg, &k[i]));
  for (int i = 0; i < merged->n_tensors; i++) {
    const param_tensor *t = &merged->tensors[i];
    int layer, tg = tensor_target(merged, a, i, &layer);
    double err = 0.0, scale = 0.0;
    if (tg >= 0) GORP_CALL(merge_error(merged, base, a, i, layer, tg, &err, &scale));
    const int same = tg >= 0 ? err <= 1e-5 * scale
                             : !memcmp(merged->params + t->offset, base->params + t->offset,
                                       t->numel * sizeof(float));
    if (!same)
      GORP_ERR(GORP_EINPUT,
               "%s: tensor %s is not model.init's (%s)%s: the run trained more than its LoRA "
               "pairs, so PEFT adapters on model.init would not give its model; gorp export-hf "
               "exports model.h5 itself",
               path, t->name, init, tg >= 0 ? " plus its adapters" : "");
  }
  return GORP_OK;
}

static int write_adapter(const model *m, const adapters *a, int p, const char *dir,
                         const char *base_path, double dropout) {
  GORP_CALL(fs_mkdirs(dir));
  const int n_max = 2 * m->cfg.num_layers * LORA_N_TARGETS;
  safetensors_entry *e;
  char(*names)[MODEL_NAME_MAX + 48];
  GORP_ALLOC(e, n_max, "the adapter tensor list");
  names = malloc((size_t)n_max * sizeof(*names));
  int rc = names ? GORP_OK : GORP_ERROR(GORP_EMEM, "out of memory for the adapter names");
  int n = 0;
  for (int l = 0; !rc && l < m->cfg.num_layers; l++)
    for (int tg = 0; tg < LORA_N_TARGETS; tg++) {
      if (!(a->targets >> tg & 1)) continue;
      const param_tensor *t = &m->tensors[model_linear_tensor(l, tg)];
      const float *A = factor(a, m, p, l, tg);
      for (int which = 0; which < 2; which++, n++) {
        snprintf(names[n], sizeof(names[n]), "base_model.model.model.layers.%d.%s.lora_%c.weight",
                 l, lora_module_names[tg], "AB"[which]);
        e[n] = which ? (safetensors_entry){names[n],
                                           2,
                                           {t->full[0], a->r},
                                           A + (size_t)a->r * (size_t)t->full[1]}
                     : (safetensors_entry){names[n], 2, {a->r, t->full[1]}, A};
      }
    }
  char path[PATH_MAX];
  if (!rc) rc = fs_path_fmt(path, sizeof(path), "%s/adapter_model.safetensors", dir);
  if (!rc) rc = safetensors_write_f32(path, e, n);
  free(names);
  free(e);
  GORP_CALL(rc);
  cJSON *j = cJSON_CreateObject(), *mods = cJSON_CreateArray();
  int ok = j && mods && cJSON_AddItemToObject(j, "target_modules", mods);
  if (!ok) cJSON_Delete(mods);
  for (int tg = 0; ok && tg < LORA_N_TARGETS; tg++)
    if (a->targets >> tg & 1)
      ok = cJSON_AddItemToArray(mods, cJSON_CreateString(strchr(lora_module_names[tg], '.') + 1));
  ok = ok && cJSON_AddStringToObject(j, "peft_type", "LORA") &&
       cJSON_AddStringToObject(j, "task_type", "CAUSAL_LM") &&
       cJSON_AddNumberToObject(j, "r", a->r) &&
       cJSON_AddNumberToObject(j, "lora_alpha", a->alpha) &&
       cJSON_AddNumberToObject(j, "lora_dropout", dropout) &&
       cJSON_AddStringToObject(j, "bias", "none") && cJSON_AddFalseToObject(j, "fan_in_fan_out") &&
       cJSON_AddFalseToObject(j, "use_rslora") && cJSON_AddTrueToObject(j, "inference_mode") &&
       cJSON_AddStringToObject(j, "base_model_name_or_path", base_path);
  rc = ok ? write_json(dir, "adapter_config.json", j)
          : GORP_ERROR(GORP_EMEM, "out of memory building adapter_config.json");
  cJSON_Delete(j);
  return rc;
}

/* A pair's folder name: what it trained on, which must make one path component. */
static int check_task_name(const char *task, const char *path) {
  if (!task[0] || task[0] == '.' || strchr(task, '/') || !strcmp(task, "base"))
    GORP_ERR(GORP_EINPUT, "%s: an adapter pair trained on '%s', which cannot name a folder", path,
             task);
  return GORP_OK;
}

/* out's absolute spelling + "/base", what adapter_config.json names as the base */
static int base_path_of(const char *out, char *path) {
  char cwd[PATH_MAX];
  if (out[0] == '/') return fs_path_fmt(path, PATH_MAX, "%s/base", out);
  if (!getcwd(cwd, sizeof(cwd)))
    GORP_ERR(GORP_EIO, "cannot read the working directory: %s", strerror(errno));
  return fs_path_fmt(path, PATH_MAX, "%s/%s/base", cwd, out);
}

static int export_pairs(const model *base, const adapters *a, const char *out, const char *task,
                        const hf_export_opts *o, const char *tokenizer, double dropout) {
  char base_path[PATH_MAX], dir[PATH_MAX], shown[PATH_MAX];
  GORP_CALL(base_path_of(out, base_path));
  stage s;
  GORP_CALL(stage_begin(&s, out, o->force));
  int rc = fs_path_fmt(dir, sizeof(dir), "%s/base", s.dir);
  if (!rc) rc = fs_path_fmt(shown, sizeof(shown), "%s/base", out);
  if (!rc) rc = write_model(base, dir, shown, o, tokenizer);
  for (int p = 0; !rc && p < a->pairs; p++) {
    if (task && strcmp(task, a->tasks[p])) continue;
    rc = fs_path_fmt(dir, sizeof(dir), "%s/%s", s.dir, a->tasks[p]);
    if (!rc) rc = write_adapter(base, a, p, dir, base_path, dropout);
    if (!rc)
      printf("  %s/%s: PEFT adapter of pair %d (r %d, alpha %g)\n", out, a->tasks[p], p + 1, a->r,
             a->alpha);
  }
  if (!rc) rc = stage_commit(&s);
  if (rc) remove_tree(s.dir, 0);
  return rc;
}

/* Everything export-peft needs from the run before anything is written. */
static int peft_inputs(const char *run_dir, const char *path, const char *task, model *merged,
                       adapters *a, char *init, char *tok, double *dropout) {
  char *config, value[64];
  GORP_CALL(run_config(run_dir, &config));
  /* a path is stored absolute; the keyword is "random" */
  const int has_init = config_text_get(config, "model.init", init, PATH_MAX) && init[0] == '/';
  run_tokenizer(config, tok);
  *dropout = config_text_get(config, "lora.dropout", value, sizeof(value)) ? atof(value) : 0.0;
  free(config);
  GORP_CALL(modelfile_load(merged, path));
  GORP_CALL(read_adapters(path, merged, a));
  if (!has_init)
    GORP_ERR(GORP_EINPUT,
             "%s: the run started from a random initialisation (no model.init file), which is "
             "not stored; export-peft needs the base model file the adapters were trained on",
             run_dir);
  int found = !task;
  for (int p = 0; p < a->pairs; p++) {
    GORP_CALL(check_task_name(a->tasks[p], path));
    found |= task && !strcmp(task, a->tasks[p]);
  }
  if (!found) GORP_ERR(GORP_EUSAGE, "%s: no adapter pair trained on task '%s'", path, task);
  return GORP_OK;
}

int hf_export_peft(const char *run_dir, const char *out_dir, const char *task,
                   const hf_export_opts *o) {
  char path[PATH_MAX], init[PATH_MAX], tok[PATH_MAX];
  int is_run;
  GORP_CALL(model_path(run_dir, path, &is_run));
  if (!is_run) GORP_ERR(GORP_EUSAGE, "export-peft takes a run directory, not %s", run_dir);
  GORP_CALL(fs_check_regular(path, "run directory's model file", NULL));
  GORP_CALL(check_out(out_dir, o->force));
  model merged = {0}, base = {0};
  adapters a = {0};
  double dropout;
  int rc = peft_inputs(run_dir, path, task, &merged, &a, init, tok, &dropout);
  if (!rc && o->tokenizer) rc = fs_path_fmt(tok, sizeof(tok), "%s", o->tokenizer);
  if (!rc && tok[0]) rc = fs_check_regular(tok, "tokenizer", NULL);
  if (!rc) rc = modelfile_load(&base, init);
  if (!rc) rc = check_base(&merged, &base, &a, path, init);
  if (!rc)
    printf("export-peft: %s (%d pair%s) on base %s -> %s\n", path, a.pairs, a.pairs == 1 ? "" : "s",
           init, out_dir);
  if (!rc) rc = export_pairs(&base, &a, out_dir, task, o, tok[0] ? tok : NULL, dropout);
  adapters_free(&a);
  model_free(&merged);
  model_free(&base);
  return rc;
}
