/* The HDF5 model file (see modelfile.h): atomic save, config read, verified load. Serial HDF5 on
 * one rank; every file is opened with the "strong" close degree so that closing it on an error
 * path also closes whatever datasets and attributes the failing code left open. */
#include "gorp/modelfile.h"

#include "gorp/crc.h"
#include "gorp/err.h"
#include "gorp/fsutil.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The architecture attributes of /model, keyed as in HF's config.json. */
static const struct {
  const char *key;
  size_t offset;
} int_keys[] = {{"vocab_size", offsetof(model_config, vocab_size)},
                {"hidden_size", offsetof(model_config, hidden_size)},
                {"intermediate_size", offsetof(model_config, intermediate_size)},
                {"num_hidden_layers", offsetof(model_config, num_layers)},
                {"num_attention_heads", offsetof(model_config, num_heads)},
                {"num_key_value_heads", offsetof(model_config, num_kv_heads)},
                {"head_dim", offsetof(model_config, head_dim)},
                {"max_position_embeddings", offsetof(model_config, max_seq)},
                {"tie_word_embeddings", offsetof(model_config, tie_embeddings)}},
  float_keys[] = {{"rms_norm_eps", offsetof(model_config, rms_eps)},
                  {"rope_theta", offsetof(model_config, rope_theta)}};
#define N_KEYS(a) (sizeof(a) / sizeof((a)[0]))

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

static int write_attr(hid_t obj, const char *key, hid_t file_type, hid_t mem_type, const void *v,
                      const char *path) {
  hid_t space, attr;
  GORP_H5(space = H5Screate(H5S_SCALAR));
  attr = H5Acreate2(obj, key, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
  H5Sclose(space);
  if (attr < 0 || H5Awrite(attr, mem_type, v) < 0)
    GORP_ERR(GORP_EIO, "%s: cannot write attribute %s", path, key);
  GORP_H5(H5Aclose(attr));
  return GORP_OK;
}

/* Variable-length UTF-8 strings: h5py reads them as str, and no 64 KiB attribute limit applies. */
static hid_t vlen_utf8_type(void) {
  hid_t type = H5Tcopy(H5T_C_S1);
  if (type >= 0 && (H5Tset_size(type, H5T_VARIABLE) < 0 || H5Tset_cset(type, H5T_CSET_UTF8) < 0)) {
    H5Tclose(type);
    return -1;
  }
  return type;
}

static int write_str_attr(hid_t obj, const char *key, const char *s, const char *path) {
  hid_t type;
  GORP_H5(type = vlen_utf8_type());
  const int rc = write_attr(obj, key, type, type, &s, path);
  H5Tclose(type);
  return rc;
}

/* config.json for a model that came without one (random init, pretrain): what HF would write. */
static char *generated_hf_config(const model_config *c) {
  cJSON *j = cJSON_CreateObject();
  cJSON_AddItemToObject(j, "architectures",
                        cJSON_CreateStringArray((const char *[]){"LlamaForCausalLM"}, 1));
  cJSON_AddStringToObject(j, "model_type", "llama");
  cJSON_AddStringToObject(j, "hidden_act", "silu");
  for (size_t i = 0; i < N_KEYS(int_keys); i++) {
    const int v = *(const int *)((const char *)c + int_keys[i].offset);
    if (!strcmp(int_keys[i].key, "tie_word_embeddings"))
      cJSON_AddBoolToObject(j, int_keys[i].key, v);
    else
      cJSON_AddNumberToObject(j, int_keys[i].key, v);
  }
  for (size_t i = 0; i < N_KEYS(float_keys); i++)
    cJSON_AddNumberToObject(
        j, float_keys[i].key,
        float_decimal(*(const float *)((const char *)c + float_keys[i].offset)));
  cJSON_AddStringToObject(j, "torch_dtype", "float32");
  char *s = cJSON_Print(j);
  cJSON_Delete(j);
  return s;
}

static int write_config(hid_t grp, const model_config *c, const char *hf_config, const char *path) {
  for (size_t i = 0; i < N_KEYS(int_keys); i++)
    GORP_CALL(write_attr(grp, int_keys[i].key, H5T_STD_I32LE, H5T_NATIVE_INT,
                         (const char *)c + int_keys[i].offset, path));
  for (size_t i = 0; i < N_KEYS(float_keys); i++) {
    const double v = float_decimal(*(const float *)((const char *)c + float_keys[i].offset));
    GORP_CALL(write_attr(grp, float_keys[i].key, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v, path));
  }
  if (hf_config) return write_str_attr(grp, "hf_config", hf_config, path);
  char *generated = generated_hf_config(c);
  if (!generated) GORP_ERR(GORP_EMEM, "out of memory generating the hf_config of %s", path);
  const int rc = write_str_attr(grp, "hf_config", generated, path);
  cJSON_free(generated);
  return rc;
}

static int write_tensor(hid_t grp, const param_tensor *t, const float *x, const char *path) {
  const hsize_t dims[2] = {(hsize_t)t->shape[0], (hsize_t)t->shape[1]};
  hid_t space, d;
  GORP_H5(space = H5Screate_simple(t->ndim, dims, NULL));
  d = H5Dcreate2(grp, t->name, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Sclose(space);
  if (d < 0 || H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) < 0)
    GORP_ERR(GORP_EIO, "%s: cannot write dataset /model/%s", path, t->name);
  const uint32_t crc = crc32_floats(x, t->numel);
  GORP_CALL(write_attr(d, "crc32", H5T_STD_U32LE, H5T_NATIVE_UINT32, &crc, path));
  GORP_H5(H5Dclose(d));
  return GORP_OK;
}

static int write_model(hid_t file, const model *m, const char *hf_config, const char *path) {
  const int version = MODELFILE_FORMAT_VERSION;
  GORP_CALL(write_attr(file, "gorp_format_version", H5T_STD_I32LE, H5T_NATIVE_INT, &version, path));
  GORP_CALL(write_str_attr(file, "gorp_file_kind", "model", path));
  hid_t grp;
  GORP_H5(grp = H5Gcreate2(file, "model", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  GORP_CALL(write_config(grp, &m->cfg, hf_config, path));
  for (int i = 0; i < m->n_tensors; i++)
    GORP_CALL(write_tensor(grp, &m->tensors[i], m->params + m->tensors[i].offset, path));
  GORP_H5(H5Gclose(grp));
  return GORP_OK;
}

/* A file access list whose H5Fclose also closes every object still open in the file. */
static hid_t strong_fapl(void) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl >= 0 && H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
    H5Pclose(fapl);
    return -1;
  }
  return fapl;
}

static int write_tmp(const model *m, const char *tmp, const char *hf_config) {
  /* a plain open first: its errno says why the file cannot be created, in one line */
  const int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
  if (fd < 0) GORP_ERR(GORP_EIO, "cannot create %s: %s", tmp, strerror(errno));
  close(fd);
  hid_t fapl, file;
  GORP_H5(fapl = strong_fapl());
  file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  H5Pclose(fapl);
  if (file < 0) GORP_ERR(GORP_EIO, "cannot create %s", tmp);
  const int rc = write_model(file, m, hf_config, tmp);
  if (H5Fclose(file) < 0 && !rc) GORP_ERR(GORP_EIO, "%s: closing the file failed", tmp);
  return rc;
}

int modelfile_save(const model *m, const char *path, const char *hf_config_json) {
  const size_t n = strlen(path) + sizeof(".tmp");
  char *tmp;
  GORP_ALLOC(tmp, n, "a file name");
  snprintf(tmp, n, "%s.tmp", path);
  int rc = write_tmp(m, tmp, hf_config_json);
  if (!rc) rc = fs_publish(tmp, path);
  if (rc) {
    unlink(tmp); /* no half-written file stays behind; path was not touched before the rename */
    gorp_error(__FILE__, __LINE__, __func__, rc, "could not save model file %s", path);
  }
  free(tmp);
  return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* reading */

/* A numeric scalar attribute; float_ok also accepts floating-point values (read as mem_type). */
static int read_num_attr(hid_t obj, const char *obj_name, const char *key, int float_ok,
                         hid_t mem_type, void *out, const char *path) {
  if (H5Aexists(obj, key) <= 0)
    GORP_ERR(GORP_EINPUT, "%s: %s has no attribute %s", path, obj_name, key);
  hid_t attr, type, space;
  GORP_H5(attr = H5Aopen(obj, key, H5P_DEFAULT));
  GORP_H5(type = H5Aget_type(attr));
  GORP_H5(space = H5Aget_space(attr));
  const H5T_class_t cls = H5Tget_class(type);
  const hssize_t npoints = H5Sget_simple_extent_npoints(space);
  H5Tclose(type);
  H5Sclose(space);
  if (npoints != 1 || !(cls == H5T_INTEGER || (float_ok && cls == H5T_FLOAT)))
    GORP_ERR(GORP_EINPUT, "%s: attribute %s of %s must be a single %s", path, key, obj_name,
             float_ok ? "number" : "integer");
  if (H5Aread(attr, mem_type, out) < 0)
    GORP_ERR(GORP_EINPUT, "%s: cannot read attribute %s of %s", path, key, obj_name);
  GORP_H5(H5Aclose(attr));
  return GORP_OK;
}

static int read_config(hid_t file, const char *path, model_config *c) {
  memset(c, 0, sizeof(*c));
  hid_t grp;
  GORP_H5(grp = H5Gopen2(file, "model", H5P_DEFAULT));
  for (size_t i = 0; i < N_KEYS(int_keys); i++)
    GORP_CALL(read_num_attr(grp, "/model", int_keys[i].key, 0, H5T_NATIVE_INT,
                            (char *)c + int_keys[i].offset, path));
  for (size_t i = 0; i < N_KEYS(float_keys); i++) {
    double v;
    GORP_CALL(read_num_attr(grp, "/model", float_keys[i].key, 1, H5T_NATIVE_DOUBLE, &v, path));
    *(float *)((char *)c + float_keys[i].offset) = (float)v;
  }
  GORP_H5(H5Gclose(grp));
  if (c->tie_embeddings != 0 && c->tie_embeddings != 1)
    GORP_ERR(GORP_EINPUT, "%s: attribute tie_word_embeddings of /model must be 0 or 1, got %d",
             path, c->tie_embeddings);
  if (model_config_check(c))
    GORP_ERR(GORP_EINPUT, "%s: the attributes of /model do not describe a valid model", path);
  return GORP_OK;
}

static int check_header(hid_t file, const char *path) {
  int version = 0;
  GORP_CALL(read_num_attr(file, "the root group", "gorp_format_version", 0, H5T_NATIVE_INT,
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

/* Opens path read-only after checking that it is a gorp HDF5 file of our version with /model. */
static int open_model_file(const char *path, hid_t *file) {
  FILE *f = fopen(path, "rb");
  if (!f) GORP_ERR(GORP_EINPUT, "cannot open model file %s: %s", path, strerror(errno));
  fclose(f);
  if (H5Fis_hdf5(path) <= 0) GORP_ERR(GORP_EINPUT, "%s is not an HDF5 file", path);
  hid_t fapl;
  GORP_H5(fapl = strong_fapl());
  *file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
  H5Pclose(fapl);
  if (*file < 0) GORP_ERR(GORP_EINPUT, "cannot open HDF5 file %s", path);
  const int rc = check_header(*file, path);
  if (rc) H5Fclose(*file);
  return rc;
}

static void format_dims(char *buf, size_t size, const hsize_t *dims, int ndim) {
  size_t used = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < ndim && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%llu", i ? ", " : "",
                             (unsigned long long)dims[i]);
  if (used < size) snprintf(buf + used, size - used, "]");
}

static int read_tensor(hid_t grp, const param_tensor *t, float *x, const char *path) {
  if (H5Lexists(grp, t->name, H5P_DEFAULT) <= 0)
    GORP_ERR(GORP_EINPUT, "%s: dataset /model/%s is missing", path, t->name);
  hid_t d, type, space;
  GORP_H5(d = H5Oopen(grp, t->name, H5P_DEFAULT));
  if (H5Iget_type(d) != H5I_DATASET)
    GORP_ERR(GORP_EINPUT, "%s: /model/%s is not a dataset", path, t->name);
  GORP_H5(type = H5Dget_type(d));
  const H5T_class_t cls = H5Tget_class(type);
  H5Tclose(type);
  if (cls != H5T_FLOAT)
    GORP_ERR(GORP_EINPUT, "%s: dataset /model/%s is not floating-point (float32 expected)", path,
             t->name);
  GORP_H5(space = H5Dget_space(d));
  hsize_t dims[H5S_MAX_RANK];
  const int ndim = H5Sget_simple_extent_dims(space, dims, NULL);
  H5Sclose(space);
  const hsize_t want[2] = {(hsize_t)t->shape[0], (hsize_t)t->shape[1]};
  int same = ndim == t->ndim;
  for (int i = 0; same && i < ndim; i++) same = dims[i] == want[i];
  if (!same) {
    char got[128], expected[64];
    format_dims(got, sizeof(got), dims, ndim < 0 ? 0 : ndim);
    format_dims(expected, sizeof(expected), want, t->ndim);
    GORP_ERR(GORP_EINPUT, "%s: dataset /model/%s has shape %s, expected %s", path, t->name, got,
             expected);
  }
  if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) < 0)
    GORP_ERR(GORP_EINPUT, "%s: cannot read dataset /model/%s", path, t->name);
  char where[MODEL_NAME_MAX + 16];
  snprintf(where, sizeof(where), "dataset /model/%s", t->name);
  uint32_t stored;
  GORP_CALL(read_num_attr(d, where, "crc32", 0, H5T_NATIVE_UINT32, &stored, path));
  const uint32_t crc = crc32_floats(x, t->numel);
  if (crc != stored)
    GORP_ERR(GORP_EINPUT,
             "%s: dataset /model/%s is damaged: crc32 of its data is 0x%08x, the stored crc32 "
             "attribute says 0x%08x",
             path, t->name, crc, stored);
  GORP_H5(H5Oclose(d));
  return GORP_OK;
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

static int load_open(model *m, hid_t file, const char *path) {
  model_config cfg;
  GORP_CALL(read_config(file, path, &cfg));
  GORP_CALL(model_create(m, &cfg));
  hid_t grp;
  GORP_H5(grp = H5Gopen2(file, "model", H5P_DEFAULT));
  GORP_CALL(check_no_unknown(grp, m, path));
  for (int i = 0; i < m->n_tensors; i++)
    GORP_CALL(read_tensor(grp, &m->tensors[i], m->params + m->tensors[i].offset, path));
  GORP_H5(H5Gclose(grp));
  return GORP_OK;
}

int modelfile_read_config(const char *path, model_config *cfg) {
  hid_t file;
  GORP_CALL(open_model_file(path, &file));
  const int rc = read_config(file, path, cfg);
  H5Fclose(file);
  return rc;
}

int modelfile_load(model *m, const char *path) {
  memset(m, 0, sizeof(*m));
  hid_t file;
  GORP_CALL(open_model_file(path, &file));
  const int rc = load_open(m, file, path);
  H5Fclose(file);
  if (rc) model_free(m);
  return rc;
}
