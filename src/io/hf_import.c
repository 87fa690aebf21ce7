/* Hugging Face LLaMA directory -> model file (see hf_import.h): config.json parsing with HF's
 * defaults, then every tensor of the model table from model.safetensors or from the shards of
 * model.safetensors.index.json, copied into the file one tensor at a time (a BF16 matrix stays
 * bf16). */
#include "gorp/hf_import.h"

#include "gorp/err.h"
#include "gorp/fsutil.h"
#include "gorp/jsonutil.h"
#include "gorp/modelfile.h"
#include "gorp/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int join(char *out, const char *dir, const char *name) {
  return fs_path_fmt(out, PATH_MAX, "%s/%s", dir, name);
}

/* ------------------------------------------------------------------------------------------ */
/* config.json */

/* The value of key, or NULL when it is absent or null (HF's way of saying "the default"). */
static const cJSON *config_value(const cJSON *root, const char *key) {
  const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
  return cJSON_IsNull(j) ? NULL : j;
}

/* An optional key that is absent keeps the default already in *v. */
static int config_int(const cJSON *root, const char *key, int required, int *v, const char *path) {
  const cJSON *j = config_value(root, key);
  if (!j && required) GORP_ERR(GORP_EINPUT, "%s: required key \"%s\" is missing", path, key);
  if (!j) return GORP_OK;
  const double d = j->valuedouble;
  if (!cJSON_IsNumber(j) || d != floor(d) || fabs(d) > INT_MAX)
    GORP_ERR(GORP_EINPUT, "%s: \"%s\" must be an integer", path, key);
  *v = (int)d;
  return GORP_OK;
}

static int config_float(const cJSON *root, const char *key, float *v, const char *path) {
  const cJSON *j = config_value(root, key);
  if (!j) return GORP_OK;
  if (!cJSON_IsNumber(j)) GORP_ERR(GORP_EINPUT, "%s: \"%s\" must be a number", path, key);
  /* a larger value would become inf in the float32 the model keeps */
  if (!isfinite(j->valuedouble) || fabs(j->valuedouble) > FLT_MAX)
    GORP_ERR(GORP_EINPUT, "%s: \"%s\" = %g is outside the range of a float32", path, key,
             j->valuedouble);
  *v = (float)j->valuedouble;
  return GORP_OK;
}

/* The value of key k from root into c; an absent (or null) optional key keeps c's value. */
static int config_key(const cJSON *root, const model_key *k, model_config *c, const char *path) {
  if (k->type == MODEL_KEY_FLOAT) {
    float v = (float)model_key_get(c, k);
    GORP_CALL(config_float(root, k->hf, &v, path));
    model_key_set(c, k, v);
  } else if (k->type == MODEL_KEY_BOOL) {
    const cJSON *j = config_value(root, k->hf);
    if (j && !cJSON_IsBool(j))
      GORP_ERR(GORP_EINPUT, "%s: \"%s\" must be true or false", path, k->hf);
    if (j) model_key_set(c, k, cJSON_IsTrue(j));
  } else {
    int v = (int)model_key_get(c, k);
    GORP_CALL(config_int(root, k->hf, k->required, &v, path));
    model_key_set(c, k, v);
  }
  return GORP_OK;
}

/* transformers 5 writes the rotary settings as "rope_parameters": {"rope_theta": .., "rope_type":
 * ..} instead of a top-level rope_theta. Both are read; a rope_type other than "default" (LLaMA's
 * unscaled RoPE, the only one gorp computes), any other key, or a theta that disagrees with the
 * top-level one is refused rather than silently replaced by the default theta. */
static int config_rope_parameters(const cJSON *root, const char *path, model_config *c) {
  const cJSON *rp = config_value(root, "rope_parameters");
  if (!rp) return GORP_OK;
  if (!cJSON_IsObject(rp)) GORP_ERR(GORP_EINPUT, "%s: \"rope_parameters\" must be an object", path);
  for (const cJSON *e = rp->child; e; e = e->next) {
    if (!strcmp(e->string, "rope_type")) {
      if (!cJSON_IsString(e) || strcmp(e->valuestring, "default"))
        GORP_ERR(
            GORP_EINPUT,
            "%s: rope_parameters.rope_type %s%s%s is not implemented (gorp computes \"default\", "
            "LLaMA's unscaled RoPE)",
            path, cJSON_IsString(e) ? "\"" : "",
            cJSON_IsString(e) ? e->valuestring : "(not a string)", cJSON_IsString(e) ? "\"" : "");
    } else if (!strcmp(e->string, "rope_theta")) {
      float theta = c->rope_theta;
      GORP_CALL(config_float(rp, "rope_theta", &theta, path));
      if (config_value(root, "rope_theta") && theta != c->rope_theta)
        GORP_ERR(GORP_EINPUT,
                 "%s: rope_parameters.rope_theta = %g disagrees with the top-level rope_theta = %g",
                 path, (double)theta, (double)c->rope_theta);
      c->rope_theta = theta;
    } else {
      GORP_ERR(GORP_EINPUT,
               "%s: rope_parameters.%s is not supported (gorp reads rope_theta and rope_type "
               "\"default\" only)",
               path, e->string);
    }
  }
  return GORP_OK;
}

static int config_parse(const cJSON *root, const char *path, model_config *c) {
  if (!cJSON_IsObject(root)) GORP_ERR(GORP_EINPUT, "%s is not a JSON object", path);
  int n_keys;
  const model_key *k = model_config_keys(&n_keys);
  for (int i = 0; i < n_keys; i++)
    if (k[i].required) GORP_CALL(config_key(root, &k[i], c, path));
  /* HF's defaults (LlamaConfig) of the optional keys; tie_word_embeddings is false (c is zeroed) */
  c->num_kv_heads = c->num_heads;
  c->head_dim = c->num_heads > 0 ? c->hidden_size / c->num_heads : 0;
  c->max_seq = 2048;
  c->rms_eps = 1e-6f;
  c->rope_theta = 10000.0f;
  for (int i = 0; i < n_keys; i++)
    if (!k[i].required) GORP_CALL(config_key(root, &k[i], c, path));
  GORP_CALL(config_rope_parameters(root, path, c));
  /* refused rather than ignored: each would silently change the numerics */
  if (config_value(root, "rope_scaling"))
    GORP_ERR(GORP_EINPUT, "%s: \"rope_scaling\" is not supported (it must be null or absent)",
             path);
  const cJSON *act = config_value(root, "hidden_act");
  if (act && !(cJSON_IsString(act) && !strcmp(act->valuestring, "silu")))
    GORP_ERR(GORP_EINPUT, "%s: \"hidden_act\" must be \"silu\" (LLaMA's SwiGLU)", path);
  if (model_config_check(c))
    GORP_ERR(GORP_EINPUT, "%s does not describe a valid LLaMA model (see above)", path);
  return GORP_OK;
}

int hf_config_parse(const char *json, const char *path, model_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cJSON *root;
  GORP_CALL(json_parse(path, json, strlen(json), &root));
  const int rc = config_parse(root, path, cfg);
  cJSON_Delete(root);
  return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* tensors */

static void format_shape(char *buf, size_t size, const int64_t *shape, int ndim) {
  size_t used = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < ndim && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
  if (used < size) snprintf(buf + used, size - used, "]");
}

static int ends_with(const char *s, const char *suffix) {
  const size_t n = strlen(s), k = strlen(suffix);
  return n >= k && !strcmp(s + n - k, suffix);
}

/* An import under way: m's table (nothing allocated), the file being written, and one tensor at a
 * time on its way from a shard to the file. */
typedef struct hf_sink {
  const model *m;
  modelfile_writer w; /* its buf holds the tensor being copied */
  char *seen;         /* (m->n_tensors) the table's tensors written so far */
} hf_sink;

/* Copies every tensor of f that the table knows into the file: a BF16 matrix as bfloat16 (a
 * LLaMA-2-7B in bf16 stays 13.5 GB, not 27), any other as float32 (exact). */
static int import_tensors(hf_sink *k, const safetensors_file *f) {
  const model *m = k->m;
  for (int j = 0; j < f->n_tensors; j++) {
    const safetensors_tensor *st = &f->tensors[j];
    const param_tensor *t = model_find(m, st->name);
    if (!t) {
      /* HF recomputes these buffers from rope_theta, and ties lm_head to the embedding */
      if (ends_with(st->name, ".rotary_emb.inv_freq")) continue;
      if (m->cfg.tie_embeddings && !strcmp(st->name, "lm_head.weight")) continue;
      GORP_ERR(GORP_EINPUT,
               "%s: tensor %s is not part of the LLaMA model that config.json describes", f->path,
               st->name);
    }
    const size_t i = (size_t)(t - m->tensors);
    if (k->seen[i])
      GORP_ERR(GORP_EINPUT, "%s: tensor %s was already read from another shard", f->path, st->name);
    int same = st->ndim == t->ndim;
    for (int d = 0; same && d < t->ndim; d++) same = st->shape[d] == t->shape[d];
    if (!same) {
      char got[128], want[64];
      format_shape(got, sizeof(got), st->shape, st->ndim);
      format_shape(want, sizeof(want), t->shape, t->ndim);
      GORP_ERR(GORP_EINPUT, "%s: tensor %s has shape %s, expected %s", f->path, st->name, got,
               want);
    }
    const int bf16 = t->ndim == 2 && !strcmp(st->dtype, "BF16");
    float *buf = k->w.buf;
    if (bf16)
      GORP_CALL(safetensors_read_bf16(f, st, (uint16_t *)buf));
    else
      GORP_CALL(safetensors_read_f32(f, st, buf));
    GORP_CALL(modelfile_writer_put(&k->w, t, buf, bf16));
    k->seen[i] = 1;
  }
  return GORP_OK;
}

static int import_file(hf_sink *k, const char *path) {
  safetensors_file f;
  GORP_CALL(safetensors_open(&f, path));
  const int rc = import_tensors(k, &f);
  safetensors_close(&f);
  return rc;
}

/* Each shard of the weight map once, in order of first mention. */
static int import_shards(hf_sink *k, const char *dir, const cJSON *wm, const char *index) {
  const cJSON *e;
  cJSON_ArrayForEach(e, wm) {
    if (!cJSON_IsString(e))
      GORP_ERR(GORP_EINPUT, "%s: weight_map entry of %s must be a file name", index, e->string);
    const cJSON *prev = wm->child;
    while (prev != e && strcmp(prev->valuestring, e->valuestring)) prev = prev->next;
    if (prev != e) continue;
    char path[PATH_MAX];
    GORP_CALL(join(path, dir, e->valuestring));
    if (access(path, R_OK))
      GORP_ERR(GORP_EINPUT, "%s: shard %s (holding tensor %s) cannot be read: %s", index, path,
               e->string, strerror(errno));
    GORP_CALL(import_file(k, path));
  }
  return GORP_OK;
}

static int check_all_found(const model *m, const char *seen, const cJSON *wm, const char *where) {
  for (int i = 0; i < m->n_tensors; i++) {
    if (seen[i]) continue;
    const char *name = m->tensors[i].name;
    const cJSON *shard = wm ? cJSON_GetObjectItemCaseSensitive(wm, name) : NULL;
    if (cJSON_IsString(shard))
      GORP_ERR(GORP_EINPUT, "%s: tensor %s is missing from its shard %s", where, name,
               shard->valuestring);
    GORP_ERR(GORP_EINPUT, "%s: tensor %s is missing", where, name);
  }
  return GORP_OK;
}

static int import_weight_map(hf_sink *k, const char *dir, const cJSON *root, const char *index) {
  const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
  if (!cJSON_IsObject(wm)) GORP_ERR(GORP_EINPUT, "%s has no \"weight_map\" object", index);
  GORP_CALL(import_shards(k, dir, wm, index));
  return check_all_found(k->m, k->seen, wm, index);
}

static int import_index(hf_sink *k, const char *dir, const char *index) {
  cJSON *root;
  GORP_CALL(json_read_file(index, "safetensors index", FS_MAX_HF_CONFIG, &root));
  const int rc = import_weight_map(k, dir, root, index);
  cJSON_Delete(root);
  return rc;
}

static int import_single(hf_sink *k, const char *path) {
  GORP_CALL(import_file(k, path));
  return check_all_found(k->m, k->seen, NULL, path);
}

/* The tensors of dir into out; the file is published only when every tensor of the table was
 * written. */
static int import_into(hf_sink *k, const char *dir, const char *out, const char *config_json) {
  char single[PATH_MAX], index[PATH_MAX];
  GORP_CALL(join(single, dir, "model.safetensors"));
  GORP_CALL(join(index, dir, "model.safetensors.index.json"));
  /* like transformers: a single file wins over an index */
  const int have_single = !access(single, F_OK), have_index = !access(index, F_OK);
  if (!have_single && !have_index)
    GORP_ERR(GORP_EINPUT, "%s: neither model.safetensors nor model.safetensors.index.json exists",
             dir);
  GORP_CALL(modelfile_writer_open(&k->w, k->m, out, config_json));
  const int rc = have_single ? import_single(k, single) : import_index(k, dir, index);
  return modelfile_writer_close(&k->w, rc);
}

static int import_weights(const model *m, const char *dir, const char *out, const char *config_json,
                          modelfile_counts *counts) {
  hf_sink k = {.m = m};
  GORP_ALLOC(k.seen, m->n_tensors, "the imported-tensor flags");
  memset(k.seen, 0, (size_t)m->n_tensors);
  const int rc = import_into(&k, dir, out, config_json);
  if (!rc) *counts = k.w.counts;
  free(k.seen);
  return rc;
}

/* eos_token_id of the JSON object in file path (an int or a list of ints; absent or null: none)
 * as m's end ids. */
static int eos_from(model *m, const cJSON *root, const char *path) {
  const cJSON *j = config_value(root, "eos_token_id");
  if (!j) return GORP_OK;
  const int list = cJSON_IsArray(j), n = list ? cJSON_GetArraySize(j) : 1;
  GORP_CHECK(n >= 1 && n <= MODEL_MAX_EOS, GORP_EINPUT,
             "%s: \"eos_token_id\" lists %d ids; gorp keeps 1 to %d", path, n, MODEL_MAX_EOS);
  int64_t ids[MODEL_MAX_EOS];
  for (int i = 0; i < n; i++) {
    const cJSON *e = list ? cJSON_GetArrayItem(j, i) : j;
    const double v = e->valuedouble;
    if (!cJSON_IsNumber(e) || v != floor(v) || fabs(v) > INT_MAX)
      GORP_ERR(GORP_EINPUT, "%s: \"eos_token_id\" must be an integer or a list of integers", path);
    ids[i] = (int64_t)v;
  }
  char what[PATH_MAX + 32];
  snprintf(what, sizeof(what), "%s: \"eos_token_id\"", path);
  return model_set_eos(m, ids, n, what);
}

/* The model's end ids: generation_config.json's eos_token_id when the file exists (what
 * transformers' generate() stops at), else config.json's (root). */
static int import_eos(model *m, const char *dir, const cJSON *root, const char *config_path) {
  char path[PATH_MAX];
  GORP_CALL(join(path, dir, "generation_config.json"));
  if (access(path, F_OK)) return eos_from(m, root, config_path);
  cJSON *gen;
  GORP_CALL(json_read_file(path, "Hugging Face generation config", FS_MAX_HF_CONFIG, &gen));
  const int rc = eos_from(m, gen, path);
  cJSON_Delete(gen);
  return rc;
}

/* path (PATH_MAX): the config.json that src names, src being that file or a folder holding it */
static int config_path_of(char *path, const char *src) {
  struct stat st;
  if (!stat(src, &st) && S_ISDIR(st.st_mode)) return join(path, src, "config.json");
  if (strlen(src) >= PATH_MAX) GORP_ERR(GORP_EINPUT, "path too long: %s", src);
  strcpy(path, src);
  return GORP_OK;
}

/* config.json at path, parsed; its text in *text unless text is NULL */
static int config_read_file(const char *path, model_config *cfg, char **text) {
  char *json;
  size_t len;
  GORP_CALL(fs_read_regular(path, "Hugging Face config", FS_MAX_HF_CONFIG, &json, &len));
  int rc = strlen(json) != len
               ? GORP_ERROR(GORP_EINPUT, "'%s': NUL byte at byte offset %zu; expected JSON text",
                            path, strlen(json))
               : hf_config_parse(json, path, cfg);
  if (rc || !text)
    free(json);
  else
    *text = json;
  return rc;
}

int hf_config_read(const char *src, model_config *cfg, char **text) {
  char path[PATH_MAX];
  GORP_CALL(config_path_of(path, src));
  return config_read_file(path, cfg, text);
}

static int import_dir(model *m, const char *dir, const char *out, modelfile_counts *counts) {
  char path[PATH_MAX];
  GORP_CALL(join(path, dir, "config.json"));
  model_config cfg;
  char *json;
  GORP_CALL(config_read_file(path, &cfg, &json));
  int rc = model_plan_tp(m, &cfg, NULL); /* the table; the tensors go to out one at a time */
  cJSON *root = NULL;
  if (!rc) rc = json_parse(path, json, strlen(json), &root);
  if (!rc) rc = import_eos(m, dir, root, path);
  cJSON_Delete(root);
  if (!rc) rc = import_weights(m, dir, out, json, counts);
  free(json);
  return rc;
}

int hf_import(const char *dir, const char *out, modelfile_counts *counts) {
  model m;
  memset(&m, 0, sizeof(m));
  const int rc = import_dir(&m, dir, out, counts);
  model_free(&m);
  if (rc) gorp_trace(__FILE__, __LINE__, __func__, "import_dir(&m, dir, out, counts)");
  return rc;
}
