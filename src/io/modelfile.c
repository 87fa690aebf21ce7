/* The HDF5 model file (see modelfile.h): atomic save, config read, verified load, serial on one
 * process or collective over the ranks of a dist (h5io.h). Every file is opened with the "strong"
 * close degree so that closing it on an error path also closes whatever datasets and attributes
 * the failing code left open. */
#include "gorp/modelfile.h"

#include "gorp/bf16.h"
#include "gorp/crc.h"
#include "gorp/dist.h"
#include "gorp/err.h"
#include "gorp/fsutil.h"
#include "gorp/h5io.h"
#include "gorp/lora.h"
#include "gorp/model_state.h"
#include "gorp/version.h"

#include <cjson/cJSON.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The float64 whose shortest decimal reads back as x: stores 1e-5f as 1e-05, not 1.0000000e-05. */
static double float_decimal(float x) {
  char buf[32];
  for (int digits = 1; digits <= 9; digits++) {
    snprintf(buf, sizeof(buf), "%.*g", digits, x);
    if (strtof(buf, NULL) == x) break;
  }
  return strtod(buf, NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* writing */

char *modelfile_hf_config(const model_config *c, const int *eos, int n_eos) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddItemToObject(j, "architectures",
                        cJSON_CreateStringArray((const char *[]){"LlamaForCausalLM"}, 1));
  cJSON_AddStringToObject(j, "model_type", "llama");
  cJSON_AddStringToObject(j, "hidden_act", "silu");
  int n_keys;
  const model_key *k = model_config_keys(&n_keys);
  for (int i = 0; i < n_keys; i++) {
    const double v = model_key_get(c, &k[i]);
    if (k[i].type == MODEL_KEY_BOOL)
      cJSON_AddBoolToObject(j, k[i].hf, (int)v);
    else
      cJSON_AddNumberToObject(j, k[i].hf,
                              k[i].type == MODEL_KEY_FLOAT ? float_decimal((float)v) : v);
  }
  if (n_eos == 1) cJSON_AddNumberToObject(j, "eos_token_id", eos[0]);
  if (n_eos > 1) cJSON_AddItemToObject(j, "eos_token_id", cJSON_CreateIntArray(eos, n_eos));
  cJSON_AddStringToObject(j, "torch_dtype", "float32");
  char *s = cJSON_Print(j);
  cJSON_Delete(j);
  return s;
}

static int write_config(hid_t grp, const model_config *c, const char *hf_config, const char *path) {
  int n_keys;
  const model_key *k = model_config_keys(&n_keys);
  for (int i = 0; i < n_keys; i++) {
    if (k[i].type == MODEL_KEY_FLOAT) {
      const double v = float_decimal((float)model_key_get(c, &k[i]));
      GORP_CALL(h5io_write_attr(grp, k[i].hf, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v, path));
    } else {
      const int v = (int)model_key_get(c, &k[i]);
      GORP_CALL(h5io_write_attr(grp, k[i].hf, H5T_STD_I32LE, H5T_NATIVE_INT, &v, path));
    }
  }
  if (hf_config) return h5io_write_str_attr(grp, "hf_config", hf_config, path);
  char *generated = modelfile_hf_config(c, NULL, 0);
  if (!generated) GORP_ERR(GORP_EMEM, "out of memory generating the hf_config of %s", path);
  const int rc = h5io_write_str_attr(grp, "hf_config", generated, path);
  cJSON_free(generated);
  return rc;
}

/* The stored crc32 attribute of dataset name under grp (read after the data was verified against
 * it, so it is the checksum of what was read). */
static int dataset_crc(hid_t grp, const char *name, const char *path, uint32_t *crc) {
  const hid_t ds = H5Dopen2(grp, name, H5P_DEFAULT);
  if (ds < 0) GORP_ERR(GORP_EINPUT, "%s: cannot open dataset /model/%s", path, name);
  const int rc = h5io_read_num_attr(ds, name, "crc32", 0, H5T_NATIVE_UINT32, crc, path);
  H5Dclose(ds);
  return rc;
}

/* Reads tensor t's dataset s (this rank's block) into m's storage of t: the file's bf16 or fp32
 * values widened or rounded to the tensor's dtype (model.dtype) where the two differ. */
static int read_tensor(hid_t grp, model *m, const param_tensor *t, h5io_data s, const dist *d,
                       const char *path) {
  int file16;
  GORP_CALL(h5io_agree(d, h5io_dataset_bf16(grp, t->name, &file16, path), path, t->name));
  s.mem_type = file16 ? H5T_NATIVE_UINT16 : H5T_NATIVE_FLOAT;
  if (t->bf16 && file16) return h5io_read_part(grp, &s, m->params16 + t->offset, d, path);
  if (!t->bf16) {
    float *x = m->params + t->offset;
    GORP_CALL(h5io_read_part(grp, &s, x, d, path));
    if (file16) /* the bf16 values fill x's first half: widen from the end, each read before the
                 * floats written after it cover it */
      for (size_t j = t->numel; j-- > 0;) x[j] = bf16_to_f32(((const bf16 *)x)[j]);
    return GORP_OK;
  }
  float *wide; /* (numel) an fp32 file tensor on its way into bf16: one tensor at a time */
  GORP_ALLOC(wide, t->numel, "a tensor read for rounding to bf16");
  const int rc = h5io_read_part(grp, &s, wide, d, path);
  if (!rc) bf16_round(m->params16 + t->offset, wide, t->numel);
  free(wide);
  return rc;
}

/* Writes (save) or reads the tensors of m that `set` names under grp, each as this rank holds it
 * (a bf16 tensor as a bfloat16 dataset, h5io.h). With merge, the linears that carry its adapters
 * are written merged (lora_merge), in fp32, from a copy in scratch. Reading with crcs, crcs[i]
 * receives tensor i's verified crc32 (modelfile_checksum). */
static int walk_tensors(hid_t grp, model *m, int save, modelfile_tensors set, const lora *merge,
                        float *scratch, const dist *d, const char *path, uint32_t *crcs) {
  int rc = GORP_OK;
  for (int i = 0; i < m->n_tensors && !rc; i++) {
    const param_tensor *t = &m->tensors[i];
    if (set == MODELFILE_TRAINABLE && !t->trainable) continue;
    /* a lean file's missing tensors came from its base; every rank sees the same links */
    if (set == MODELFILE_PRESENT && H5Lexists(grp, t->name, H5P_DEFAULT) <= 0) continue;
    const hsize_t dims[2] = {(hsize_t)t->full[0], (hsize_t)t->full[1]};
    const h5io_block b = model_tensor_block(t, 0);
    h5io_data s = {t->name, H5T_NATIVE_FLOAT, t->ndim, dims, &b, 1};
    if (!save) {
      rc = read_tensor(grp, m, t, s, d, path);
    } else {
      const void *x =
          t->bf16 ? (const void *)(m->params16 + t->offset) : (const void *)(m->params + t->offset);
      int layer, tg = merge ? lora_tensor_target(merge, m, t, &layer) : -1;
      if (tg >= 0) {
        if (t->bf16)
          bf16_widen(scratch, m->params16 + t->offset, t->numel);
        else
          memcpy(scratch, x, t->numel * sizeof(float));
        rc = lora_merge(merge, scratch, layer, tg);
        if (rc) break;
        x = scratch;
      }
      if (t->bf16 && tg < 0) s.mem_type = H5T_NATIVE_UINT16;
      rc = h5io_write_part(grp, &s, x, d, path);
    }
    if (!rc && crcs) rc = h5io_agree(d, dataset_crc(grp, t->name, path, &crcs[i]), path, t->name);
  }
  return rc;
}

int modelfile_write_header(hid_t file, const char *kind, const char *path) {
  const int version = MODELFILE_FORMAT_VERSION;
  GORP_CALL(
      h5io_write_attr(file, "gorp_format_version", H5T_STD_I32LE, H5T_NATIVE_INT, &version, path));
  GORP_CALL(h5io_write_str_attr(file, "gorp_version", gorp_version(), path));
  return h5io_write_str_attr(file, "gorp_file_kind", kind, path);
}

/* /model with its attributes (the architecture, hf_config, the end ids), no tensors yet. */
static int create_group(hid_t file, const model *m, const char *hf_config, const char *path,
                        hid_t *grp) {
  GORP_CALL(h5io_create_group(file, "model", path, grp));
  GORP_CALL(write_config(*grp, &m->cfg, hf_config, path));
  if (!m->n_eos) return GORP_OK;
  return h5io_write_array_attr(*grp, "eos_token_id", H5T_STD_I32LE, H5T_NATIVE_INT, m->eos,
                               m->n_eos, path);
}

/* /model; with merge, the target linears merged with its adapters (walk_tensors). */
static int write_group(hid_t file, const model *m, modelfile_tensors set, const lora *merge,
                       float *scratch, const char *hf_config, const dist *d, const char *path) {
  hid_t grp = -1;
  int rc = h5io_agree(d, create_group(file, m, hf_config, path, &grp), path,
                      "writing /model's attributes");
  if (!rc) rc = walk_tensors(grp, (model *)m, 1, set, merge, scratch, d, path, NULL);
  if (grp >= 0) H5Gclose(grp);
  return rc;
}

int modelfile_write_group(hid_t file, const model *m, modelfile_tensors set, const char *hf_config,
                          const dist *d, const char *path) {
  return write_group(file, m, set, NULL, NULL, hf_config, d, path);
}

/* A comma-separated list of the names of lo's targets (short or module names) into buf. */
static void target_list(char *buf, size_t size, const lora *lo, const char *const *names) {
  buf[0] = '\0';
  for (int tg = 0; tg < LORA_N_TARGETS; tg++)
    if (lo->targets >> tg & 1)
      snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", buf[0] ? "," : "", names[tg]);
}

static int write_adapter_attrs(hid_t grp, const lora *lo, const char *method, const char *path) {
  char list[256];
  const double alpha = float_decimal(lo->alpha);
  const int merged = 1;
  GORP_CALL(h5io_write_attr(grp, "r", H5T_STD_I32LE, H5T_NATIVE_INT, &lo->r, path));
  GORP_CALL(h5io_write_attr(grp, "alpha", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &alpha, path));
  GORP_CALL(h5io_write_attr(grp, "pairs", H5T_STD_I32LE, H5T_NATIVE_INT, &lo->n_pairs, path));
  GORP_CALL(h5io_write_attr(grp, "merged", H5T_STD_I32LE, H5T_NATIVE_INT, &merged, path));
  GORP_CALL(h5io_write_str_attr(grp, "method", method, path));
  target_list(list, sizeof(list), lo, lora_target_names);
  GORP_CALL(h5io_write_str_attr(grp, "targets", list, path));
  target_list(list, sizeof(list), lo, lora_module_names);
  return h5io_write_str_attr(grp, "target_modules", list, path);
}

/* /adapters/task_NN/<module>.lora_A (r, in) and .lora_B (out, r) of every pair, each rank
 * writing its part of the factors (B transposed back from lora's Bt through scratch). */
static int write_pair(hid_t grp, const lora *lo, int p, float *scratch, const dist *d,
                      const char *path) {
  const float *pair = lora_pair(lo, p);
  for (int l = 0; l < lo->L; l++)
    for (int tg = 0; tg < LORA_N_TARGETS; tg++) {
      if (!(lo->targets >> tg & 1)) continue;
      const int r = lo->r, out = lo->out[tg];
      char name[MODEL_NAME_MAX + 16];
      h5io_block a, b;
      lora_factor_blocks(lo, tg, &a, &b);
      const hsize_t da[2] = {a.rows, a.cols}, db[2] = {b.rows, b.cols};
      snprintf(name, sizeof(name), "model.layers.%d.%s.lora_A", l, lora_module_names[tg]);
      const h5io_data sa = {name, H5T_NATIVE_FLOAT, 2, da, &a, 1};
      GORP_CALL(h5io_write_part(grp, &sa, lora_A(lo, pair, l, tg), d, path));
      const float *Bt = lora_Bt(lo, pair, l, tg);
      for (int i = 0; i < out; i++)
        for (int k = 0; k < r; k++) scratch[(size_t)i * r + k] = Bt[(size_t)k * out + i];
      name[strlen(name) - 1] = 'B';
      const h5io_data sb = {name, H5T_NATIVE_FLOAT, 2, db, &b, 1};
      GORP_CALL(h5io_write_part(grp, &sb, scratch, d, path));
    }
  return GORP_OK;
}

static int write_adapters(hid_t file, const lora *lo, const char *method,
                          const char *const *pair_tasks, float *scratch, const dist *d,
                          const char *path) {
  hid_t grp;
  int rc = h5io_create_group(file, "adapters", path, &grp);
  if (!rc) rc = write_adapter_attrs(grp, lo, method, path);
  rc = h5io_agree(d, rc, path, "writing /adapters' attributes");
  for (int p = 0; p < lo->n_pairs && !rc; p++) {
    char name[16];
    snprintf(name, sizeof(name), "task_%02d", p + 1);
    hid_t pg;
    rc = h5io_create_group(grp, name, path, &pg);
    if (!rc) rc = h5io_write_str_attr(pg, "tasks", pair_tasks[p], path);
    rc = h5io_agree(d, rc, path, "creating an adapter pair's group");
    if (!rc) rc = write_pair(pg, lo, p, scratch, d, path);
    if (pg >= 0) H5Gclose(pg);
  }
  if (grp >= 0) H5Gclose(grp);
  return rc;
}

/* Floats of the largest of: a merged weight's shard, a pair's B factor (transposed). */
static size_t merge_scratch_len(const model *m, const lora *lo) {
  size_t n = 0;
  for (int i = 0; i < m->n_tensors; i++) {
    int layer;
    if (lora_tensor_target(lo, m, &m->tensors[i], &layer) >= 0 && m->tensors[i].numel > n)
      n = m->tensors[i].numel;
  }
  for (int tg = 0; tg < LORA_N_TARGETS; tg++)
    if (lo->targets >> tg & 1 && (size_t)lo->out[tg] * lo->r > n) n = (size_t)lo->out[tg] * lo->r;
  return n;
}

int modelfile_save_merged_tp(const model *m, const lora *lo, const char *method,
                             const char *const *pair_tasks, const char *path,
                             const char *hf_config_json, const dist *d) {
  if (lo && !lo->n_pairs) lo = NULL; /* nothing to merge or keep */
  const size_t n = strlen(path) + sizeof(".tmp");
  char *tmp;
  GORP_ALLOC(tmp, n, "a file name");
  snprintf(tmp, n, "%s.tmp", path);
  float *scratch = NULL;
  int rc = GORP_OK;
  if (lo && !(scratch = malloc(merge_scratch_len(m, lo) * sizeof(float))))
    rc = GORP_ERROR(GORP_EMEM, "out of memory for one merged weight of %s", path);
  hid_t file;
  rc = h5io_agree(d, rc, path, "allocating");
  if (!rc) rc = h5io_create_par(tmp, d, &file);
  if (!rc) {
    rc = h5io_agree(d, modelfile_write_header(file, "model", tmp), tmp, "writing the header");
    if (!rc) rc = write_group(file, m, MODELFILE_ALL, lo, scratch, hf_config_json, d, tmp);
    if (!rc && lo) rc = write_adapters(file, lo, method, pair_tasks, scratch, d, tmp);
    rc = h5io_close_publish(file, rc, tmp, path, d);
  }
  if (rc) GORP_ERROR(rc, "could not save model file %s", path);
  free(scratch);
  free(tmp);
  return rc;
}

int modelfile_save_tp(const model *m, const char *path, const char *hf_config_json, const dist *d) {
  return modelfile_save_merged_tp(m, NULL, NULL, NULL, path, hf_config_json, d);
}

int modelfile_save(const model *m, const char *path, const char *hf_config_json) {
  return modelfile_save_tp(m, path, hf_config_json, NULL);
}

int modelfile_writer_open(modelfile_writer *w, const model *m, const char *path,
                          const char *hf_config) {
  memset(w, 0, sizeof(*w));
  w->file = w->grp = -1;
  w->path = path;
  const size_t n = strlen(path) + sizeof(".tmp");
  GORP_ALLOC(w->tmp, n, "a file name");
  snprintf(w->tmp, n, "%s.tmp", path);
  size_t largest = 0;
  for (int i = 0; i < m->n_tensors; i++)
    if (m->tensors[i].numel > largest) largest = m->tensors[i].numel;
  int rc = GORP_OK;
  if (!(w->buf = malloc(largest * sizeof(float))))
    rc = GORP_ERROR(GORP_EMEM, "out of memory for one tensor (%zu values) of %s", largest, path);
  if (!rc) rc = h5io_create(w->tmp, &w->file);
  if (!rc) rc = modelfile_write_header(w->file, "model", w->tmp);
  if (!rc) rc = create_group(w->file, m, hf_config, w->tmp, &w->grp);
  return rc ? modelfile_writer_close(w, rc) : GORP_OK;
}

int modelfile_writer_put(modelfile_writer *w, const param_tensor *t, const void *x, int bf16) {
  const hsize_t dims[2] = {(hsize_t)t->full[0], (hsize_t)t->full[1]};
  const h5io_block b = h5io_whole(t->ndim, dims);
  const h5io_data s = {t->name, bf16 ? H5T_NATIVE_UINT16 : H5T_NATIVE_FLOAT, t->ndim, dims, &b, 1};
  GORP_CALL(h5io_write_part(w->grp, &s, x, NULL, w->tmp));
  w->counts.n_tensors++;
  w->counts.n_values += t->numel;
  if (bf16) w->counts.n_bf16 += t->numel;
  return GORP_OK;
}

int modelfile_writer_close(modelfile_writer *w, int rc) {
  if (w->grp >= 0) H5Gclose(w->grp);
  if (w->file >= 0) rc = h5io_close_publish(w->file, rc, w->tmp, w->path, NULL);
  free(w->tmp);
  free(w->buf);
  w->tmp = NULL;
  w->buf = NULL;
  w->file = w->grp = -1;
  return rc;
}

int modelfile_print_adapters(hid_t file, const char *path) {
  const htri_t has = H5Lexists(file, "adapters", H5P_DEFAULT);
  if (has < 0)
    GORP_ERR(GORP_EINPUT, "%s: cannot read the root group's links (damaged file?)", path);
  if (!has) return GORP_OK;
  hid_t grp;
  GORP_CALL(h5io_open_group(file, "adapters", path, &grp));
  int r = 0, pairs = 0, merged = 0;
  double alpha = 0.0;
  char *method = NULL, *targets = NULL;
  int rc = h5io_read_num_attr(grp, "/adapters", "r", 0, H5T_NATIVE_INT, &r, path);
  if (!rc) rc = h5io_read_num_attr(grp, "/adapters", "alpha", 1, H5T_NATIVE_DOUBLE, &alpha, path);
  if (!rc) rc = h5io_read_num_attr(grp, "/adapters", "pairs", 0, H5T_NATIVE_INT, &pairs, path);
  if (!rc) rc = h5io_read_num_attr(grp, "/adapters", "merged", 0, H5T_NATIVE_INT, &merged, path);
  if (!rc) rc = h5io_read_str_attr(grp, "/adapters", "method", &method, path);
  if (!rc) rc = h5io_read_str_attr(grp, "/adapters", "targets", &targets, path);
  if (!rc)
    printf("adapters: %d pair(s) of %s, r %d, alpha %g, on %s; %s\n", pairs, method, r, alpha,
           targets, merged ? "merged into /model" : "not merged");
  for (int p = 0; p < pairs && !rc; p++) {
    char name[32], *tasks = NULL;
    snprintf(name, sizeof(name), "/adapters/task_%02d", p + 1);
    hid_t pg = H5Gopen2(file, name, H5P_DEFAULT);
    if (pg < 0) {
      rc = GORP_ERROR(GORP_EINPUT, "%s: /adapters says %d pairs but group %s is missing", path,
                      pairs, name);
      break;
    }
    rc = h5io_read_str_attr(pg, name, "tasks", &tasks, path);
    if (!rc) printf("  %s: trained on %s\n", name, tasks);
    free(tasks);
    H5Gclose(pg);
  }
  free(method);
  free(targets);
  H5Gclose(grp);
  return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* reading */

static int read_config(hid_t file, const char *path, model_config *c) {
  memset(c, 0, sizeof(*c));
  hid_t grp;
  GORP_CALL(h5io_open_group(file, "model", path, &grp));
  int n_keys;
  const model_key *k = model_config_keys(&n_keys);
  for (int i = 0; i < n_keys; i++) {
    const int is_float = k[i].type == MODEL_KEY_FLOAT;
    double v;
    int iv;
    GORP_CALL(h5io_read_num_attr(grp, "/model", k[i].hf, is_float,
                                 is_float ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT,
                                 is_float ? (void *)&v : (void *)&iv, path));
    model_key_set(c, &k[i], is_float ? v : iv);
  }
  GORP_H5(H5Gclose(grp));
  for (int i = 0; i < n_keys; i++) {
    const int v = (int)model_key_get(c, &k[i]);
    if (k[i].type == MODEL_KEY_BOOL && v != 0 && v != 1)
      GORP_ERR(GORP_EINPUT, "%s: attribute %s of /model must be 0 or 1, got %d", path, k[i].hf, v);
  }
  if (model_config_check(c))
    GORP_ERR(GORP_EINPUT, "%s: the attributes of /model do not describe a valid model", path);
  return GORP_OK;
}

int modelfile_check_header(hid_t file, const char *path) {
  int version = 0;
  GORP_CALL(h5io_read_num_attr(file, "the root group", "gorp_format_version", 0, H5T_NATIVE_INT,
                               &version, path));
  if (version != MODELFILE_FORMAT_VERSION)
    GORP_ERR(GORP_EINPUT, "%s: gorp_format_version is %d; this gorp reads version %d", path,
             version, MODELFILE_FORMAT_VERSION);
  hid_t grp = H5Lexists(file, "model", H5P_DEFAULT) > 0 ? H5Oopen(file, "model", H5P_DEFAULT) : -1;
  if (grp < 0 || H5Iget_type(grp) != H5I_GROUP)
    GORP_ERR(GORP_EINPUT, "%s has no /model group (not a gorp model file or checkpoint)", path);
  GORP_H5(H5Oclose(grp));
  return GORP_OK;
}

/* Opens path read-only (collectively over d) after checking that it is a gorp HDF5 file of our
 * version with /model. */
static int open_model_file(const char *path, const dist *d, hid_t *file) {
  GORP_CALL(h5io_open_read_par(path, "model file", d, file));
  const int rc = h5io_agree(d, modelfile_check_header(*file, path), path, "checking the header");
  if (rc) H5Fclose(*file);
  return rc;
}

typedef struct unknown_links {
  const model *m;
  int count, listed;
  char names[512]; /* the first few, for the message */
} unknown_links;

static herr_t note_unknown(hid_t grp, const char *name, const H5L_info_t *info, void *op) {
  (void)grp;
  (void)info;
  unknown_links *u = op;
  if (model_find(u->m, name)) return 0;
  const size_t used = strlen(u->names);
  if (used + strlen(name) + 16 < sizeof(u->names)) {
    snprintf(u->names + used, sizeof(u->names) - used, "%s/model/%s", u->listed ? ", " : "", name);
    u->listed++;
  }
  u->count++;
  return 0;
}

static int check_no_unknown(hid_t grp, const model *m, const char *path) {
  unknown_links u = {.m = m};
  GORP_H5(H5Literate(grp, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, note_unknown, &u));
  if (!u.count) return GORP_OK;
  char more[32] = "";
  if (u.listed < u.count) snprintf(more, sizeof(more), " and %d more", u.count - u.listed);
  GORP_ERR(GORP_EINPUT, "%s: /model holds %d object(s) that a model with this config lacks: %s%s",
           path, u.count, u.names, more);
}

int modelfile_read_tensors(hid_t file, model *m, modelfile_tensors set, const dist *d,
                           const char *path) {
  hid_t grp;
  int rc = h5io_agree(d, h5io_open_group(file, "model", path, &grp), path, "opening /model");
  if (!rc) rc = walk_tensors(grp, m, 0, set, NULL, NULL, d, path, NULL);
  if (grp >= 0) H5Gclose(grp);
  return rc;
}

/* The model's end ids, /model's optional eos_token_id (files written before it have none). */
static int read_eos(hid_t grp, model *m, const char *path) {
  const htri_t has = H5Aexists(grp, "eos_token_id");
  if (has < 0)
    GORP_ERR(GORP_EINPUT, "%s: cannot read the attributes of /model (damaged file?)", path);
  if (!has) return GORP_OK;
  int64_t ids[MODEL_MAX_EOS];
  int n;
  GORP_CALL(h5io_read_nums_attr(grp, "/model", "eos_token_id", 0, H5T_NATIVE_INT64, ids,
                                MODEL_MAX_EOS, &n, path));
  char what[4200];
  snprintf(what, sizeof(what), "%s: attribute eos_token_id of /model", path);
  return model_set_eos(m, ids, n, what);
}

/* ---- lean files: the base reference and the weights' checksum ---- */

/* One tensor's name and crc32, the terms of a checksum. */
typedef struct weight_crc {
  char name[MODEL_NAME_MAX];
  uint32_t crc;
} weight_crc;

static int by_name(const void *a, const void *b) {
  return strcmp(((const weight_crc *)a)->name, ((const weight_crc *)b)->name);
}

/* CRC-32 over the n terms in name order, each its name with the NUL and its crc32 (4 bytes
 * little-endian): the same sum whichever file (a lean file or its base) each tensor came from,
 * and whatever order the tensors were listed in. Sorts w. */
static int weights_checksum(weight_crc *w, int n, uint32_t *sum) {
  qsort(w, (size_t)n, sizeof(*w), by_name);
  size_t len = 0;
  for (int i = 0; i < n; i++) len += strlen(w[i].name) + 5;
  unsigned char *buf;
  GORP_ALLOC(buf, len + 1, "the weights' checksum");
  unsigned char *at = buf;
  for (int i = 0; i < n; i++) {
    const size_t k = strlen(w[i].name) + 1;
    memcpy(at, w[i].name, k);
    for (int j = 0; j < 4; j++) at[k + j] = (unsigned char)(w[i].crc >> 8 * j);
    at += k + 4;
  }
  *sum = crc32_bytes(buf, len);
  free(buf);
  return GORP_OK;
}

/* The checksum of m's tensors from their crc32s (crcs[i]: tensor i's). */
static int model_checksum(const model *m, const uint32_t *crcs, uint32_t *sum) {
  weight_crc *w;
  GORP_ALLOC(w, (size_t)m->n_tensors, "the weights' checksum");
  for (int i = 0; i < m->n_tensors; i++) {
    snprintf(w[i].name, sizeof(w[i].name), "%s", m->tensors[i].name);
    w[i].crc = crcs[i];
  }
  const int rc = weights_checksum(w, m->n_tensors, sum);
  free(w);
  return rc;
}

int modelfile_write_base(hid_t file, const modelfile_base *b, const char *path) {
  hid_t g;
  GORP_CALL(h5io_create_group(file, "base", path, &g));
  int rc = h5io_write_str_attr(g, "path", b->path, path);
  if (!rc) rc = h5io_write_str_attr(g, "resolved", b->resolved, path);
  if (!rc)
    rc = h5io_write_attr(g, "checksum", H5T_STD_U32LE, H5T_NATIVE_UINT32, &b->checksum, path);
  H5Gclose(g);
  return rc;
}

int modelfile_read_base(hid_t file, const char *path, modelfile_base *b, int *found) {
  memset(b, 0, sizeof(*b));
  const htri_t has = H5Lexists(file, "base", H5P_DEFAULT);
  *found = has > 0;
  if (has < 0) GORP_ERR(GORP_EINPUT, "%s: cannot list its root group (damaged file?)", path);
  if (!has) return GORP_OK;
  hid_t g;
  GORP_CALL(h5io_open_group(file, "base", path, &g));
  char *text[2] = {NULL, NULL};
  int rc = h5io_read_str_attr(g, "/base", "path", &text[0], path);
  if (!rc) rc = h5io_read_str_attr(g, "/base", "resolved", &text[1], path);
  if (!rc)
    rc = h5io_read_num_attr(g, "/base", "checksum", 0, H5T_NATIVE_UINT32, &b->checksum, path);
  H5Gclose(g);
  if (!rc && (strlen(text[0]) >= sizeof(b->path) || strlen(text[1]) >= sizeof(b->resolved)))
    rc = GORP_ERROR(GORP_EINPUT, "%s: /base names a path longer than %zu bytes", path,
                    sizeof(b->path) - 1);
  if (!rc) {
    snprintf(b->path, sizeof(b->path), "%s", text[0]);
    snprintf(b->resolved, sizeof(b->resolved), "%s", text[1]);
  }
  free(text[0]);
  free(text[1]);
  return rc;
}

/* Lists the dataset links of /model into a growing weight_crc array (names only). */
typedef struct crc_list {
  weight_crc *w;
  int n, cap, from; /* entries [0, from) came from the lean file(s) above this one */
  const char *path;
  int rc;
} crc_list;

static herr_t list_dataset(hid_t grp, const char *name, const H5L_info_t *info, void *op) {
  (void)info;
  crc_list *l = op;
  for (int i = 0; i < l->from; i++) /* a lean file's own tensor hides its base's */
    if (!strcmp(l->w[i].name, name)) return 0;
  if (strlen(name) >= MODEL_NAME_MAX) {
    l->rc = GORP_ERROR(GORP_EINPUT, "%s: /model/%s: name longer than %d bytes", l->path, name,
                       MODEL_NAME_MAX - 1);
    return -1;
  }
  if (l->n == l->cap) {
    weight_crc *g = realloc(l->w, (size_t)(l->cap = l->cap ? 2 * l->cap : 64) * sizeof(*g));
    if (!g) {
      l->rc = GORP_ERROR(GORP_EMEM, "out of memory listing %s", l->path);
      return -1;
    }
    l->w = g;
  }
  weight_crc *e = &l->w[l->n];
  snprintf(e->name, sizeof(e->name), "%s", name);
  if ((l->rc = dataset_crc(grp, name, l->path, &e->crc))) return -1;
  l->n++;
  return 0;
}

/* Adds path's tensors (and its base's, depth levels down at most) to l. */
static int list_file_crcs(const char *path, crc_list *l, int depth) {
  if (depth > MODELFILE_BASE_DEPTH)
    GORP_ERR(GORP_EINPUT, "%s: more than %d lean files refer to each other's bases (a loop?)", path,
             MODELFILE_BASE_DEPTH);
  hid_t f, grp = -1;
  GORP_CALL(open_model_file(path, NULL, &f));
  modelfile_base b;
  int lean;
  int rc = modelfile_read_base(f, path, &b, &lean);
  if (!rc) rc = h5io_open_group(f, "model", path, &grp);
  l->from = l->n;
  l->path = path;
  l->rc = GORP_OK;
  if (!rc && H5Literate(grp, H5_INDEX_NAME, H5_ITER_INC, NULL, list_dataset, l) < 0)
    rc = l->rc ? l->rc : GORP_ERROR(GORP_EINPUT, "%s: cannot list /model (damaged file?)", path);
  if (grp >= 0) H5Gclose(grp);
  H5Fclose(f);
  if (!rc && lean) rc = list_file_crcs(b.resolved, l, depth + 1);
  return rc;
}

int modelfile_file_checksum(const char *path, uint32_t *sum) {
  crc_list l = {0};
  int rc = list_file_crcs(path, &l, 0);
  if (!rc) rc = weights_checksum(l.w, l.n, sum);
  free(l.w);
  return rc;
}

static int read_weights(hid_t file, model *m, const dist *d, const char *path, uint32_t *crcs,
                        int depth);

/* Reads the base that lean file `path` refers to (b) into m, crcs[i] tensor i's crc32, and checks
 * that it still holds the weights path was written on. */
static int read_base(model *m, const dist *d, const char *path, const modelfile_base *b,
                     uint32_t *crcs, int depth) {
  if (depth >= MODELFILE_BASE_DEPTH)
    GORP_ERR(GORP_EINPUT, "%s: more than %d lean files refer to each other's bases (a loop?)", path,
             MODELFILE_BASE_DEPTH);
  hid_t f;
  int rc = open_model_file(b->resolved, d, &f);
  if (rc)
    GORP_ERR(rc,
             "%s stores only the weights its run trained: the others are in its base model "
             "file %s (model.init %s), which cannot be read (see above)",
             path, b->resolved, b->path);
  model_config cfg;
  rc = read_config(f, b->resolved, &cfg);
  int n_keys;
  const model_key *k = model_config_keys(&n_keys);
  for (int i = 0; i < n_keys && !rc; i++)
    if (model_key_get(&cfg, &k[i]) != model_key_get(&m->cfg, &k[i]))
      rc = GORP_ERROR(GORP_EINPUT, "%s: its base model file %s has %s = %g, the file says %g", path,
                      b->resolved, k[i].hf, model_key_get(&cfg, &k[i]),
                      model_key_get(&m->cfg, &k[i]));
  rc = h5io_agree(d, rc, b->resolved, "reading the base's architecture");
  if (!rc) rc = read_weights(f, m, d, b->resolved, crcs, depth + 1);
  H5Fclose(f);
  uint32_t found = 0;
  if (!rc) rc = model_checksum(m, crcs, &found);
  if (!rc && found != b->checksum)
    rc = GORP_ERROR(GORP_EINPUT,
                    "%s was written on the base model file %s with checksum 0x%08x; that file now "
                    "holds other weights (checksum 0x%08x): restore the base it was trained from",
                    path, b->resolved, b->checksum, found);
  return rc;
}

/* Reads every tensor of m from file, a lean file's base first, crcs[i] tensor i's crc32. */
static int read_weights(hid_t file, model *m, const dist *d, const char *path, uint32_t *crcs,
                        int depth) {
  modelfile_base b;
  int lean;
  int rc = h5io_agree(d, modelfile_read_base(file, path, &b, &lean), path, "reading /base");
  if (!rc && lean) rc = read_base(m, d, path, &b, crcs, depth);
  hid_t grp = -1;
  if (!rc) rc = h5io_agree(d, h5io_open_group(file, "model", path, &grp), path, "opening /model");
  if (!rc)
    rc = walk_tensors(grp, m, 0, lean ? MODELFILE_PRESENT : MODELFILE_ALL, NULL, NULL, d, path,
                      crcs);
  if (grp >= 0) H5Gclose(grp);
  return rc;
}

int modelfile_read_group(hid_t file, model *m, const dist *d, const model_prep *prep,
                         const char *path) {
  model_config cfg;
  int rc = read_config(file, path, &cfg);
  if (!rc) rc = model_plan_tp(m, &cfg, d);
  if (!rc) rc = model_alloc_params(m, prep);
  hid_t grp = -1;
  if (!rc) rc = h5io_open_group(file, "model", path, &grp);
  if (!rc) rc = check_no_unknown(grp, m, path);
  if (!rc) rc = read_eos(grp, m, path);
  if (grp >= 0) H5Gclose(grp);
  uint32_t *crcs = NULL;
  if (!rc && !(crcs = calloc((size_t)m->n_tensors, sizeof(*crcs))))
    rc = GORP_ERROR(GORP_EMEM, "out of memory reading %s", path);
  rc = h5io_agree(d, rc, path, "reading /model's attributes");
  if (!rc) rc = read_weights(file, m, d, path, crcs, 0);
  if (!rc) rc = h5io_agree(d, model_checksum(m, crcs, &m->file_checksum), path, "summing");
  m->from_file = !rc;
  free(crcs);
  return rc;
}

int modelfile_read_config(const char *path, model_config *cfg) {
  hid_t file;
  GORP_CALL(open_model_file(path, NULL, &file));
  const int rc = read_config(file, path, cfg);
  H5Fclose(file);
  return rc;
}

int modelfile_load(model *m, const char *path) {
  return modelfile_load_tp(m, path, NULL, NULL);
}

int modelfile_load_tp(model *m, const char *path, const dist *d, const model_prep *prep) {
  memset(m, 0, sizeof(*m));
  hid_t file;
  GORP_CALL(open_model_file(path, d, &file));
  const int rc = modelfile_read_group(file, m, d, prep, path);
  H5Fclose(file);
  if (rc) model_free(m);
  return rc;
}
