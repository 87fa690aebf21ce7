/* GGUF llama file -> model file (see gguf.h): the config from the llama.* metadata with Hugging
 * Face's defaults for the optional keys, then each tensor by llama.cpp's name into its slot of the
 * model table (model.h lists the table's order: embedding, per layer the input norm, q, k, v, o,
 * the post-attention norm, gate, up, down, then the final norm and lm_head), q and k rows put back
 * in Hugging Face's order. Not for: the GGUF format (gguf.c), the model file's format
 * (modelfile.h). */
#include "gorp/gguf.h"

#include "gorp/err.h"
#include "gorp/lora.h"
#include "gorp/modelfile.h"

#include <ctype.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* llama.cpp's names of a layer's tensors (blk.N.<name>.weight), in the model table's order */
static const char *const layer_names[MODEL_LAYER_TENSORS] = {
    "attn_norm", "attn_q",   "attn_k", "attn_v",  "attn_output",
    "ffn_norm",  "ffn_gate", "ffn_up", "ffn_down"};
enum { SLOT_Q = 1, SLOT_K = 2 };

/* ------------------------------------------------------------------------------------------ */
/* the config */

static int is_int_type(gguf_value_type t) {
  return t == GGUF_U8 || t == GGUF_I8 || t == GGUF_U16 || t == GGUF_I16 || t == GGUF_U32 ||
         t == GGUF_I32 || t == GGUF_U64 || t == GGUF_I64;
}

/* Integer metadata key name into *v; absent, it keeps *v unless required. */
static int meta_int_named(const gguf_file *f, const char *name, int required, int *v) {
  const gguf_kv *kv = gguf_find_kv(f, name);
  if (!kv && required)
    GORP_ERR(GORP_EINPUT, "%s: required metadata key %s is missing", f->path, name);
  if (!kv) return GORP_OK;
  if (!is_int_type(kv->type))
    GORP_ERR(GORP_EINPUT, "%s: metadata key %s must be an integer (got value type %d)", f->path,
             name, kv->type);
  if (gguf_type_signed(kv->type) ? kv->i < 0 || kv->i > INT_MAX : kv->u > INT_MAX) {
    if (gguf_type_signed(kv->type))
      GORP_ERR(GORP_EINPUT, "%s: metadata key %s = %lld is out of range", f->path, name,
               (long long)kv->i);
    GORP_ERR(GORP_EINPUT, "%s: metadata key %s = %llu is out of range", f->path, name,
             (unsigned long long)kv->u);
  }
  *v = gguf_type_signed(kv->type) ? (int)kv->i : (int)kv->u;
  return GORP_OK;
}

/* Integer key llama.<key> into *v; absent, it keeps *v unless required. */
static int meta_int(const gguf_file *f, const char *key, int required, int *v) {
  char name[96];
  snprintf(name, sizeof(name), "llama.%s", key);
  return meta_int_named(f, name, required, v);
}

/* Float key llama.<key> into *v; absent, it keeps *v. */
static int meta_float(const gguf_file *f, const char *key, float *v) {
  char name[96];
  snprintf(name, sizeof(name), "llama.%s", key);
  const gguf_kv *kv = gguf_find_kv(f, name);
  if (!kv) return GORP_OK;
  if (kv->type != GGUF_F32 && kv->type != GGUF_F64)
    GORP_ERR(GORP_EINPUT, "%s: metadata key %s must be a float32 or float64 (got value type %d)",
             f->path, name, kv->type);
  /* a larger value would become inf in the float32 the model keeps */
  if (!isfinite(kv->f) || fabs(kv->f) > FLT_MAX)
    GORP_ERR(GORP_EINPUT, "%s: metadata key %s = %g is outside the range of a float32", f->path,
             name, kv->f);
  *v = (float)kv->f;
  return GORP_OK;
}

/* What gorp does not compute is refused rather than ignored: each would change the numerics. */
static int check_unsupported(const gguf_file *f) {
  const gguf_kv *arch = gguf_find_kv(f, "general.architecture");
  if (!arch || arch->type != GGUF_STRING)
    GORP_ERR(GORP_EINPUT, "%s: metadata key general.architecture (a string) is missing", f->path);
  if (strcmp(arch->str, "llama"))
    GORP_ERR(GORP_EINPUT, "%s: general.architecture is \"%s\"; gorp imports \"llama\" only",
             f->path, arch->str);
  const gguf_kv *scaling = gguf_find_kv(f, "llama.rope.scaling.type");
  if (scaling && !(scaling->type == GGUF_STRING && !strcmp(scaling->str, "none")))
    GORP_ERR(GORP_EINPUT, "%s: llama.rope.scaling.type is set; gorp implements plain RoPE only",
             f->path);
  int experts = 0;
  GORP_CALL(meta_int(f, "expert_count", 0, &experts));
  if (experts)
    GORP_ERR(GORP_EINPUT, "%s: llama.expert_count = %d; gorp imports dense models only", f->path,
             experts);
  return GORP_OK;
}

/* The vocabulary size: token_embd.weight's rows, which llama.vocab_size and the token list must
 * agree with when present. */
static int read_vocab(const gguf_file *f, int *vocab) {
  const gguf_tensor *t = gguf_find_tensor(f, "token_embd.weight");
  if (!t) GORP_ERR(GORP_EINPUT, "%s: tensor token_embd.weight is missing", f->path);
  if (t->ndim != 2 || t->ne[1] > INT_MAX)
    GORP_ERR(GORP_EINPUT, "%s: tensor token_embd.weight must be a matrix [hidden, vocab]", f->path);
  *vocab = (int)t->ne[1];
  int declared = *vocab;
  GORP_CALL(meta_int(f, "vocab_size", 0, &declared));
  if (declared != *vocab)
    GORP_ERR(GORP_EINPUT, "%s: llama.vocab_size = %d, but token_embd.weight has %d rows", f->path,
             declared, *vocab);
  const gguf_kv *tokens = gguf_find_kv(f, "tokenizer.ggml.tokens");
  if (tokens && (tokens->type != GGUF_ARRAY || tokens->arr_n != (uint64_t)*vocab))
    GORP_ERR(GORP_EINPUT,
             "%s: tokenizer.ggml.tokens must be an array of the %d tokens of token_embd.weight "
             "(has %llu)",
             f->path, *vocab, (unsigned long long)tokens->arr_n);
  return GORP_OK;
}

static int read_config(const gguf_file *f, model_config *c) {
  memset(c, 0, sizeof(*c));
  GORP_CALL(check_unsupported(f));
  GORP_CALL(read_vocab(f, &c->vocab_size));
  GORP_CALL(meta_int(f, "embedding_length", 1, &c->hidden_size));
  GORP_CALL(meta_int(f, "feed_forward_length", 1, &c->intermediate_size));
  GORP_CALL(meta_int(f, "block_count", 1, &c->num_layers));
  GORP_CALL(meta_int(f, "attention.head_count", 1, &c->num_heads));
  /* Hugging Face's defaults (LlamaConfig), as import-hf takes them */
  c->num_kv_heads = c->num_heads;
  c->head_dim = c->num_heads > 0 ? c->hidden_size / c->num_heads : 0;
  c->max_seq = 2048;
  c->rms_eps = 1e-6f;
  c->rope_theta = 10000.0f;
  GORP_CALL(meta_int(f, "attention.head_count_kv", 0, &c->num_kv_heads));
  GORP_CALL(meta_int(f, "attention.key_length", 0, &c->head_dim));
  GORP_CALL(meta_int(f, "context_length", 0, &c->max_seq));
  GORP_CALL(meta_float(f, "attention.layer_norm_rms_epsilon", &c->rms_eps));
  GORP_CALL(meta_float(f, "rope.freq_base", &c->rope_theta));
  c->tie_embeddings = !gguf_find_tensor(f, "output.weight");
  if (model_config_check(c))
    GORP_ERR(GORP_EINPUT, "%s: the llama.* metadata does not describe a valid model (see above)",
             f->path);
  /* before allocating the model: a hostile header must not make gorp allocate what the file
   * cannot hold, at 18 bytes per 32 values (Q4_0, the densest type gorp reads) */
  uint64_t n_params;
  model_config_params(c, &n_params);
  const uint64_t least = n_params / 32 * 18;
  if (least > f->size)
    GORP_ERR(GORP_EINPUT,
             "%s: the llama.* metadata describes a model of %llu parameters, which needs at least "
             "%llu bytes of tensor data; the file has %llu bytes",
             f->path, (unsigned long long)n_params, (unsigned long long)least,
             (unsigned long long)f->size);
  int value_dim = c->head_dim, rope_dim = c->head_dim;
  GORP_CALL(meta_int(f, "attention.value_length", 0, &value_dim));
  GORP_CALL(meta_int(f, "rope.dimension_count", 0, &rope_dim));
  if (value_dim != c->head_dim || rope_dim != c->head_dim)
    GORP_ERR(GORP_EINPUT,
             "%s: llama.attention.value_length (%d) and llama.rope.dimension_count (%d) must "
             "equal the head dimension %d (gorp rotates whole heads)",
             f->path, value_dim, rope_dim, c->head_dim);
  return GORP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* the tensors */

/* The index in m's table of the tensor llama.cpp calls name, or -1; *slot is its slot in its
 * layer (-1 outside the layers). */
static int table_index(const model *m, const char *name, int *slot) {
  const int L = m->cfg.num_layers;
  *slot = -1;
  if (!strcmp(name, "token_embd.weight")) return 0;
  if (!strcmp(name, "output_norm.weight")) return 1 + MODEL_LAYER_TENSORS * L;
  if (!strcmp(name, "output.weight") && !m->cfg.tie_embeddings) return 2 + MODEL_LAYER_TENSORS * L;
  if (strncmp(name, "blk.", 4) || !isdigit((unsigned char)name[4])) return -1;
  const long l = strtol(name + 4, NULL, 10);
  if (l >= L) return -1;
  char expect[GGUF_MAX_NAME + 32];
  for (int s = 0; s < MODEL_LAYER_TENSORS; s++) {
    /* the canonical spelling only: blk.01 would alias blk.1 */
    snprintf(expect, sizeof(expect), "blk.%ld.%s.weight", l, layer_names[s]);
    if (!strcmp(name, expect)) {
      *slot = s;
      return 1 + MODEL_LAYER_TENSORS * (int)l + s;
    }
  }
  return -1;
}

/* convert_hf_to_gguf stores q and k of LLaMA with each head's rows interleaved for llama.cpp's
 * RoPE: its row h*D + 2i + s (i < D/2, s = 0, 1) is Hugging Face's row h*D + s*D/2 + i, the two
 * halves that rotate_half pairs. This puts src's rows back (heads of D rows, cols each). */
static void unpermute_rows(float *dst, const float *src, int64_t heads, int64_t D, int64_t cols) {
  for (int64_t h = 0; h < heads; h++)
    for (int64_t i = 0; i < D / 2; i++)
      for (int64_t s = 0; s < 2; s++)
        memcpy(dst + (h * D + s * (D / 2) + i) * cols, src + (h * D + 2 * i + s) * cols,
               (size_t)cols * sizeof(float));
}

static int check_shape(const gguf_file *f, const gguf_tensor *g, const param_tensor *t) {
  /* GGUF lists the contiguous dimension first: ne = [cols, rows] */
  const uint64_t want0 = (uint64_t)(t->ndim == 2 ? t->full[1] : t->full[0]),
                 want1 = (uint64_t)t->full[0];
  if (g->ndim == t->ndim && g->ne[0] == want0 && (t->ndim == 1 || g->ne[1] == want1))
    return GORP_OK;
  /* at most 4 dims of 20 digits each */
  char got[128];
  int used = snprintf(got, sizeof(got), "[%llu", (unsigned long long)g->ne[0]);
  for (int d = 1; d < g->ndim; d++)
    used +=
        snprintf(got + used, sizeof(got) - (size_t)used, ", %llu", (unsigned long long)g->ne[d]);
  snprintf(got + used, sizeof(got) - (size_t)used, "]");
  if (t->ndim == 1)
    GORP_ERR(GORP_EINPUT, "%s: tensor %s has shape %s, expected [%llu]", f->path, g->name, got,
             (unsigned long long)want0);
  GORP_ERR(GORP_EINPUT,
           "%s: tensor %s has shape %s, expected [%llu, %llu] (GGUF order: row length first)",
           f->path, g->name, got, (unsigned long long)want0, (unsigned long long)want1);
}

/* An import under way: m's table (nothing allocated), the file being written, and one tensor at a
 * time on its way from the GGUF file to it. */
typedef struct gguf_sink {
  const model *m;
  modelfile_writer w; /* its buf holds the tensor being copied */
  float *scratch;     /* (H*D, C): q or k as GGUF orders its rows (q is the wider) */
  char *seen;         /* (m->n_tensors) the table's tensors written so far */
} gguf_sink;

/* Tensor g, dequantized, as table tensor i of m into the file; q and k rows put back. */
static int import_tensor(gguf_sink *k, const gguf_file *f, const gguf_tensor *g, int i, int slot) {
  const model *m = k->m;
  const param_tensor *t = &m->tensors[i];
  GORP_CALL(check_shape(f, g, t));
  if (slot != SLOT_Q && slot != SLOT_K) {
    GORP_CALL(gguf_read_f32(f, g, k->w.buf));
  } else {
    GORP_CALL(gguf_read_f32(f, g, k->scratch));
    const int heads = slot == SLOT_Q ? m->cfg.num_heads : m->cfg.num_kv_heads;
    unpermute_rows(k->w.buf, k->scratch, heads, m->cfg.head_dim, t->full[1]);
  }
  return modelfile_writer_put(&k->w, t, k->w.buf, 0);
}

static int import_tensors(gguf_sink *k, const gguf_file *f) {
  const model *m = k->m;
  for (int j = 0; j < f->n_tensors; j++) {
    const gguf_tensor *g = &f->tensors[j];
    int slot;
    const int i = table_index(m, g->name, &slot);
    if (i < 0)
      GORP_ERR(GORP_EINPUT,
               "%s: tensor %s is not part of the %d-layer llama model (%s embeddings) that the "
               "metadata describes",
               f->path, g->name, m->cfg.num_layers, m->cfg.tie_embeddings ? "tied" : "untied");
    if (k->seen[i]) GORP_ERR(GORP_EINPUT, "%s: tensor %s appears twice", f->path, g->name);
    GORP_CALL(import_tensor(k, f, g, i, slot));
    k->seen[i] = 1;
  }
  for (int i = 0; i < m->n_tensors; i++) {
    if (k->seen[i]) continue;
    /* i > 0: the embedding's absence stopped read_vocab */
    const int l = (i - 1) / MODEL_LAYER_TENSORS, L = m->cfg.num_layers;
    char name[GGUF_MAX_NAME + 32];
    snprintf(name, sizeof(name), "blk.%d.%s.weight", l, layer_names[(i - 1) % MODEL_LAYER_TENSORS]);
    GORP_ERR(GORP_EINPUT, "%s: tensor %s (%s) is missing", f->path,
             l < L                              ? name
             : i == 1 + MODEL_LAYER_TENSORS * L ? "output_norm.weight"
                                                : "output.weight",
             m->tensors[i].name);
  }
  return GORP_OK;
}

/* The tensors of f into the model file out, published only when every one was written. */
static int import_into(const model *m, const gguf_file *f, const char *out,
                       modelfile_counts *counts) {
  const size_t q = m->tensors[model_linear_tensor(0, LORA_Q)].numel;
  gguf_sink k = {.m = m};
  int rc = GORP_OK;
  if (!(k.scratch = malloc(q * sizeof(float))) || !(k.seen = calloc((size_t)m->n_tensors, 1)))
    rc = GORP_ERROR(GORP_EMEM, "out of memory for the q/k rows (%zu values) of %s", q, f->path);
  if (!rc) rc = modelfile_writer_open(&k.w, m, out, NULL);
  if (!rc) rc = modelfile_writer_close(&k.w, import_tensors(&k, f));
  if (!rc) *counts = k.w.counts;
  free(k.scratch);
  free(k.seen);
  return rc;
}

/* The model's end ids: tokenizer.ggml.eos_token_id and, when present and different,
 * tokenizer.ggml.eot_token_id (the end of a chat turn), as llama.cpp stops at either. */
static int read_eos(model *m, const gguf_file *f) {
  int eos = -1, eot = -1;
  GORP_CALL(meta_int_named(f, "tokenizer.ggml.eos_token_id", 0, &eos));
  GORP_CALL(meta_int_named(f, "tokenizer.ggml.eot_token_id", 0, &eot));
  int64_t ids[2];
  int n = 0;
  if (eos >= 0) ids[n++] = eos;
  if (eot >= 0 && eot != eos) ids[n++] = eot;
  if (!n) return GORP_OK;
  char what[4200];
  snprintf(what, sizeof(what), "%s: metadata tokenizer.ggml.eos_token_id/eot_token_id", f->path);
  return model_set_eos(m, ids, n, what);
}

static int import_file(model *m, const gguf_file *f, const char *out, modelfile_counts *counts) {
  model_config cfg;
  GORP_CALL(read_config(f, &cfg));
  GORP_CALL(model_plan_tp(m, &cfg, NULL)); /* the table; the tensors go to out one at a time */
  GORP_CALL(read_eos(m, f));
  return import_into(m, f, out, counts);
}

int gguf_import(const char *path, const char *out, modelfile_counts *counts) {
  gguf_file f;
  GORP_CALL(gguf_open(&f, path));
  model m;
  memset(&m, 0, sizeof(m));
  const int rc = import_file(&m, &f, out, counts);
  model_free(&m);
  gguf_close(&f);
  if (rc) gorp_trace(__FILE__, __LINE__, __func__, "import_file(&m, &f, out, counts)");
  return rc;
}
