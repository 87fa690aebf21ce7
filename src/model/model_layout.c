/* Parameter table, allocation and initialisation of the LLaMA model (see model.h).
 * The single place where the model's layout is written down: the architecture keys of
 * model_config (config.json <-> model_config <-> config.ini, model_config_keys), the tensor table
 * (HF names, shapes, TP splits, offsets) and the widest per-token activation (model_widest).
 * Model files, imports and plans walk these; they never list keys, names or widths of their own
 * (config.c's [model] keys, with their defaults and docs, use the same gorp names).
 * Not for: the numerics (model.c, ops.c) or how files store the table (modelfile.c). */
#include "gorp/model.h"

#include "gorp/bf16.h"
#include "gorp/dist.h"
#include "gorp/err.h"
#include "gorp/lora.h"
#include "gorp/rng.h"

#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* a * b in *out, 0 when it overflows */
static int mul_ok(uint64_t a, uint64_t b, uint64_t *out) {
  return !__builtin_mul_overflow(a, b, out);
}

/* config.json's order (the order of HF's generated config and of /model's attributes) */
static const model_key keys[] = {
    {"vocab_size", "vocab_size", MODEL_KEY_INT, offsetof(model_config, vocab_size), 1,
     MODEL_MAX_DIM},
    {"hidden_size", "hidden_size", MODEL_KEY_INT, offsetof(model_config, hidden_size), 1,
     MODEL_MAX_DIM},
    {"intermediate_size", "intermediate_size", MODEL_KEY_INT,
     offsetof(model_config, intermediate_size), 1, MODEL_MAX_DIM},
    {"num_hidden_layers", "num_layers", MODEL_KEY_INT, offsetof(model_config, num_layers), 1,
     MODEL_MAX_LAYERS},
    {"num_attention_heads", "num_heads", MODEL_KEY_INT, offsetof(model_config, num_heads), 1,
     MODEL_MAX_DIM},
    {"num_key_value_heads", "num_kv_heads", MODEL_KEY_INT, offsetof(model_config, num_kv_heads), 0,
     MODEL_MAX_DIM},
    {"head_dim", "head_dim", MODEL_KEY_INT, offsetof(model_config, head_dim), 0, MODEL_MAX_DIM},
    {"max_position_embeddings", "max_seq", MODEL_KEY_INT, offsetof(model_config, max_seq), 0,
     MODEL_MAX_DIM},
    {"tie_word_embeddings", "tie_embeddings", MODEL_KEY_BOOL,
     offsetof(model_config, tie_embeddings), 0, 0},
    {"rms_norm_eps", "rms_eps", MODEL_KEY_FLOAT, offsetof(model_config, rms_eps), 0, 0},
    {"rope_theta", "rope_theta", MODEL_KEY_FLOAT, offsetof(model_config, rope_theta), 0, 0}};

const model_key *model_config_keys(int *n) {
  *n = (int)(sizeof(keys) / sizeof(keys[0]));
  return keys;
}

double model_key_get(const model_config *c, const model_key *k) {
  const char *field = (const char *)c + k->offset;
  if (k->type == MODEL_KEY_FLOAT) return *(const float *)field;
  return *(const int *)field;
}

void model_key_set(model_config *c, const model_key *k, double v) {
  char *field = (char *)c + k->offset;
  if (k->type == MODEL_KEY_FLOAT)
    *(float *)field = (float)v;
  else
    *(int *)field = (int)v;
}

size_t model_widest(const model_config *c, int tp) {
  const size_t C = (size_t)c->hidden_size, F = (size_t)(c->intermediate_size / tp),
               QD = (size_t)(c->num_heads / tp) * (size_t)c->head_dim;
  const size_t wide = C > F ? C : F;
  return wide > QD ? wide : QD;
}

int model_config_check(const model_config *c) {
  int n_keys;
  const model_key *k = model_config_keys(&n_keys);
  for (int i = 0; i < n_keys; i++) {
    if (k[i].type != MODEL_KEY_INT) continue;
    const int value = (int)model_key_get(c, &k[i]);
    if (value <= 0)
      GORP_ERR(GORP_EINPUT, "model config: %s must be a positive integer, got %d", k[i].hf, value);
    if (value > k[i].max)
      GORP_ERR(GORP_EINPUT, "model config: %s = %d is over gorp's limit of %d", k[i].hf, value,
               k[i].max);
  }
  if (c->num_heads % c->num_kv_heads)
    GORP_ERR(
        GORP_EINPUT,
        "model config: num_attention_heads (%d) must be a multiple of num_key_value_heads (%d)",
        c->num_heads, c->num_kv_heads);
  if (c->head_dim % 2)
    GORP_ERR(GORP_EINPUT, "model config: head_dim must be even for rotary embeddings, got %d",
             c->head_dim);
  /* the forward pass holds num_heads * head_dim (the width of q) in an int */
  if ((int64_t)c->num_heads * c->head_dim > MODEL_MAX_DIM)
    GORP_ERR(GORP_EINPUT,
             "model config: num_attention_heads x head_dim = %d x %d = %lld is over gorp's limit "
             "of %d",
             c->num_heads, c->head_dim, (long long)c->num_heads * c->head_dim, MODEL_MAX_DIM);
  uint64_t n;
  if (!model_config_params(c, &n) || n > MODEL_MAX_PARAMS)
    GORP_ERR(GORP_EINPUT,
             "model config: %d layers of hidden_size %d, intermediate_size %d and %d x %d heads "
             "with vocab_size %d hold %s%llu parameters, over gorp's limit of %llu (2^40); check "
             "num_hidden_layers and the sizes",
             c->num_layers, c->hidden_size, c->intermediate_size, c->num_heads, c->head_dim,
             c->vocab_size, n > MODEL_MAX_PARAMS ? "" : "more than ", (unsigned long long)n,
             (unsigned long long)MODEL_MAX_PARAMS);
  for (int i = 0; i < n_keys; i++) {
    if (k[i].type != MODEL_KEY_FLOAT) continue;
    const double value = model_key_get(c, &k[i]);
    if (!(value > 0) || !isfinite(value))
      GORP_ERR(GORP_EINPUT, "model config: %s must be a finite number > 0, got %g", k[i].hf, value);
  }
  return GORP_OK;
}

int model_config_params(const model_config *c, uint64_t *n) {
  const uint64_t V = (uint64_t)c->vocab_size, C = (uint64_t)c->hidden_size,
                 F = (uint64_t)c->intermediate_size, L = (uint64_t)c->num_layers,
                 QD = (uint64_t)c->num_heads * (uint64_t)c->head_dim,
                 KD = (uint64_t)c->num_kv_heads * (uint64_t)c->head_dim;
  uint64_t embed, attn, mlp, layer, layers;
  /* per layer: 2 norms (C), q and o (QD x C), k and v (KD x C), gate, up, down (F x C) */
  if (!mul_ok(V, C * (c->tie_embeddings ? 1 : 2), &embed) || !mul_ok(2 * (QD + KD), C, &attn) ||
      !mul_ok(3 * F, C, &mlp) || __builtin_add_overflow(attn, mlp + 2 * C, &layer) ||
      !mul_ok(L, layer, &layers) || __builtin_add_overflow(layers, embed + C, n)) {
    *n = UINT64_MAX;
    return 0;
  }
  return 1;
}

/* Appends tensor (rows, cols) of the logical model, keeping this rank's part of it. */
static void add_tensor(model *m, const char *name, int64_t rows, int64_t cols, int ndim,
                       tensor_split split) {
  param_tensor *t = &m->tensors[m->n_tensors++];
  snprintf(t->name, sizeof(t->name), "%s", name);
  t->ndim = ndim;
  t->full[0] = t->shape[0] = rows;
  t->full[1] = t->shape[1] = cols;
  t->split = m->tp_size > 1 ? split : SPLIT_NONE;
  if (t->split) {
    const int axis = t->split == SPLIT_ROWS ? 0 : 1;
    t->shape[axis] = t->full[axis] / m->tp_size;
    t->split_off = t->shape[axis] * m->tp_rank;
  }
  t->numel = (size_t)(t->shape[0] * t->shape[1]);
  t->offset = m->n_params;
  t->trainable = 1;
  m->n_params += t->numel;
}

int model_linear_tensor(int layer, int linear) {
  static const int slot[MODEL_N_LINEARS] = {1, 2, 3, 4, 6, 7, 8}; /* the norms sit at 0 and 5 */
  return 1 + MODEL_LAYER_TENSORS * layer + slot[linear];
}

float *model_grad(const model *m, int i) {
  const param_tensor *t = &m->tensors[i];
  if (!t->trainable) return NULL;
  return (t->streamed ? m->grad_slot : m->grads) + t->grad_offset;
}

/* Tensor i inside params (NULL for a bf16 tensor), or its gradient (NULL for a frozen tensor). */
static float *view(const model *m, int grads, int i) {
  const param_tensor *t = &m->tensors[i];
  if (!grads) return t->bf16 ? NULL : m->params + t->offset;
  return model_grad(m, i);
}

/* Points each view at its tensor, walking the table in its (HF) order. */
static void bind_views(model *m, int grads, model_views *v) {
  int i = 0;
  v->embed = view(m, grads, i++);
  for (int l = 0; l < m->cfg.num_layers; l++) {
    layer_params *p = &v->layers[l];
    float **slot[] = {&p->ln1, &p->wq, &p->wk, &p->wv, &p->wo, &p->ln2, &p->wg, &p->wu, &p->wd};
    for (int s = 0; s < MODEL_LAYER_TENSORS; s++) *slot[s] = view(m, grads, i++);
  }
  v->norm = view(m, grads, i++);
  v->head = m->cfg.tie_embeddings ? v->embed : view(m, grads, i++);
}

size_t model_logical_index(const param_tensor *t, size_t j) {
  switch (t->split) {
  case SPLIT_ROWS:
    return j + (size_t)t->split_off * (size_t)t->full[1];
  case SPLIT_COLS: {
    const size_t cols = (size_t)t->shape[1];
    return j / cols * (size_t)t->full[1] + (size_t)t->split_off + j % cols;
  }
  default:
    return j;
  }
}

int model_create(model *m, const model_config *cfg) {
  return model_create_tp(m, cfg, NULL);
}

int model_create_tp(model *m, const model_config *cfg, const dist *d) {
  GORP_CALL(model_plan_tp(m, cfg, d));
  return model_alloc_params(m, NULL);
}

int model_plan_tp(model *m, const model_config *cfg, const dist *d) {
  memset(m, 0, sizeof(*m));
  m->ops = backend_host();
  GORP_CALL(model_config_check(cfg));
  m->cfg = *cfg;
  m->tp_size = d ? d->tp_size : 1;
  m->tp_rank = d ? d->tp_rank : 0;
  m->tp = m->tp_size > 1 ? d : NULL;
  const int tp = m->tp_size;
  if (cfg->num_kv_heads % tp || cfg->intermediate_size % tp)
    GORP_ERR(GORP_EINPUT,
             "parallel.tp = %d must divide num_key_value_heads (%d) and intermediate_size (%d): "
             "each rank holds whole heads and an equal share of the MLP",
             tp, cfg->num_kv_heads, cfg->intermediate_size);
  m->H_loc = cfg->num_heads / tp;
  m->KV_loc = cfg->num_kv_heads / tp;
  m->F_loc = cfg->intermediate_size / tp;
  const int64_t C = cfg->hidden_size, F = cfg->intermediate_size, V = cfg->vocab_size;
  const int64_t QD = (int64_t)cfg->num_heads * cfg->head_dim;
  const int64_t KD = (int64_t)cfg->num_kv_heads * cfg->head_dim;
  GORP_ALLOC(m->tensors, 3 + MODEL_LAYER_TENSORS * cfg->num_layers, "model tensor table");
  add_tensor(m, "model.embed_tokens.weight", V, C, 2, SPLIT_NONE);
  char name[MODEL_NAME_MAX];
  for (int l = 0; l < cfg->num_layers; l++) {
    struct {
      const char *module; /* HF's; a linear's is lora.h's name of its target */
      int64_t rows, cols;
      int ndim;
      tensor_split split;
    } spec[] = {{"input_layernorm", C, 1, 1, SPLIT_NONE},
                {lora_module_names[LORA_Q], QD, C, 2, SPLIT_ROWS},
                {lora_module_names[LORA_K], KD, C, 2, SPLIT_ROWS},
                {lora_module_names[LORA_V], KD, C, 2, SPLIT_ROWS},
                {lora_module_names[LORA_O], C, QD, 2, SPLIT_COLS},
                {"post_attention_layernorm", C, 1, 1, SPLIT_NONE},
                {lora_module_names[LORA_GATE], F, C, 2, SPLIT_ROWS},
                {lora_module_names[LORA_UP], F, C, 2, SPLIT_ROWS},
                {lora_module_names[LORA_DOWN], C, F, 2, SPLIT_COLS}};
    for (int s = 0; s < MODEL_LAYER_TENSORS; s++) {
      snprintf(name, sizeof(name), "model.layers.%d.%s.weight", l, spec[s].module);
      add_tensor(m, name, spec[s].rows, spec[s].cols, spec[s].ndim, spec[s].split);
    }
  }
  add_tensor(m, "model.norm.weight", C, 1, 1, SPLIT_NONE);
  if (!cfg->tie_embeddings) add_tensor(m, "lm_head.weight", V, C, 2, SPLIT_NONE);
  return GORP_OK;
}

int model_set_bf16(model *m, int i) {
  param_tensor *t = &m->tensors[i];
  if (m->params || m->params16)
    GORP_ERR(GORP_EINPUT, "model_set_bf16(%s): the parameters are allocated already", t->name);
  if (t->ndim != 2 || t->trainable)
    GORP_ERR(GORP_EINPUT, "model_set_bf16(%s): only a frozen 2-D tensor is stored in bf16",
             t->name);
  t->bf16 = 1;
  return GORP_OK;
}

int model_array_alloc(const model *m, void **p, size_t n, size_t size, const char *role) {
  size_t bytes;
  *p = NULL;
  if (__builtin_mul_overflow(n ? n : 1, size, &bytes))
    GORP_ERR(GORP_EMEM, "%zu elements of %zu bytes for %s overflow the address space", n, size,
             role);
  GORP_CALL(m->ops->alloc(p, bytes));
  return GORP_OK;
}

int model_alloc_params(model *m, const model_prep *prep) {
  if (prep && prep->fn) GORP_CALL(prep->fn(m, prep->ctx));
  /* offsets in table order within each allocation */
  m->n_params = m->n_params16 = 0;
  for (int i = 0; i < m->n_tensors; i++) {
    param_tensor *t = &m->tensors[i];
    size_t *n = t->bf16 ? &m->n_params16 : &m->n_params;
    t->offset = *n;
    *n += t->numel;
  }
  GORP_CALL(
      model_array_alloc(m, (void **)&m->params, m->n_params, sizeof(float), "model parameters"));
  if (m->n_params16)
    GORP_CALL(model_array_alloc(m, (void **)&m->params16, m->n_params16, sizeof(uint16_t),
                                "model parameters (bf16)"));
  if (m->n_params16 || m->trained_bf16) GORP_CALL(bf16_gemm_create(&m->bf16c, BF16_PATH_AUTO));
  GORP_ALLOC(m->w.layers, m->cfg.num_layers, "model layer views");
  GORP_ALLOC(m->gw.layers, m->cfg.num_layers, "model gradient views");
  bind_views(m, 0, &m->w);
  return GORP_OK;
}

int model_bf16_frozen(model *m) {
  for (int i = 0; i < m->n_tensors; i++)
    if (!m->tensors[i].trainable && m->tensors[i].ndim == 2) GORP_CALL(model_set_bf16(m, i));
  return GORP_OK;
}

int model_prep_bf16_inference(model *m, const void *unused) {
  (void)unused;
  for (int i = 0; i < m->n_tensors; i++) GORP_CALL(model_set_trainable(m, i, 0));
  return model_bf16_frozen(m);
}

op_weight model_weight(const model *m, int i) {
  const param_tensor *t = &m->tensors[i];
  if (t->bf16 && m->ops != backend_host())
    return (op_weight){.h = m->params16 + t->offset,
                       .dev = m->ops,
                       .scratch = m->scratch16,
                       .scratch_n = m->n_scratch16};
  if (t->bf16) return (op_weight){.f = NULL, .h = m->params16 + t->offset, .cache = m->bf16c};
  if (m->trained_bf16 && t->trainable && t->ndim == 2)
    return (op_weight){.f = m->params + t->offset, .h = NULL, .cache = m->bf16c};
  return op_w32(m->params + t->offset);
}

int model_head_tensor(const model *m) {
  return m->cfg.tie_embeddings ? 0 : m->n_tensors - 1;
}

int model_set_trainable(model *m, int i, int trainable) {
  if (trainable && m->tensors[i].bf16)
    GORP_ERR(GORP_EINPUT, "%s is stored in bf16 and cannot train (model.dtype, docs/CONFIG.md)",
             m->tensors[i].name);
  m->tensors[i].trainable = trainable;
  return GORP_OK;
}

int model_set_streamed(model *m, int i) {
  param_tensor *t = &m->tensors[i];
  const int in_layer = i >= 1 && i < 1 + MODEL_LAYER_TENSORS * m->cfg.num_layers;
  if (m->grads || !t->trainable || !in_layer)
    GORP_ERR(GORP_EINPUT,
             "model_set_streamed(%s): only a trainable tensor of a layer, before the gradients "
             "are allocated",
             t->name);
  t->streamed = 1;
  return GORP_OK;
}

int model_alloc_grads(model *m) {
  if (m->grads) return GORP_OK;
  m->n_grads = m->n_grad_slot = m->n_streamed = 0;
  size_t in_layer = 0; /* the streamed floats of the current layer */
  for (int i = 0; i < m->n_tensors; i++) {
    param_tensor *t = &m->tensors[i];
    if ((i - 1) % MODEL_LAYER_TENSORS == 0) in_layer = 0; /* a layer's first tensor */
    size_t *n = t->streamed ? &in_layer : &m->n_grads;
    t->grad_offset = *n;
    if (t->trainable) *n += t->numel;
    if (t->trainable && t->streamed) m->n_streamed += t->numel;
    if (in_layer > m->n_grad_slot) m->n_grad_slot = in_layer;
  }
  GORP_CALL(model_array_alloc(m, (void **)&m->grads, m->n_grads, sizeof(float), "model gradients"));
  if (m->n_grad_slot)
    GORP_CALL(model_array_alloc(m, (void **)&m->grad_slot, m->n_grad_slot, sizeof(float),
                                "a layer's streamed gradients"));
  bind_views(m, 1, &m->gw);
  return GORP_OK;
}

int model_scratch16_reserve(model *m, size_t rows) {
  if (m->ops == backend_host() || !m->n_params16) return GORP_OK;
  const size_t widest = model_widest(&m->cfg, m->tp_size), V = (size_t)m->cfg.vocab_size,
               n = rows * (widest > V ? widest : V);
  if (n <= m->n_scratch16) return GORP_OK;
  m->ops->free(m->scratch16);
  m->scratch16 = NULL;
  m->n_scratch16 = 0;
  GORP_CALL(model_array_alloc(m, (void **)&m->scratch16, n, sizeof(uint16_t),
                              "the bf16 products' rounded activations"));
  m->n_scratch16 = n;
  return GORP_OK;
}

int model_zero_grads(model *m) {
  return m->grads ? m->ops->zero(m->grads, m->n_grads * sizeof(float)) : GORP_OK;
}

void model_free(model *m) {
  /* every array but the table and the views is the ops table's (model_array_alloc); a model
   * that never got its table (model_plan_tp failed before it) holds none */
  if (m->ops) {
    m->ops->free(m->params);
    m->ops->free(m->params16);
    m->ops->free(m->scratch16);
    m->ops->free(m->grads);
    m->ops->free(m->grad_slot);
    m->ops->free(m->acts.x); /* every float activation: one allocation starting at x */
    m->ops->free(m->acts.ids);
    free(m->acts.host_rows);
    m->ops->free(m->kv.k);   /* the decoding caches and scratch are one allocation starting at k */
    m->ops->free(m->kv.tok); /* and their int arrays one starting at tok */
    free(m->kv.host_tok);
  }
  free(m->tensors);
  bf16_gemm_free(m->bf16c);
  free(m->w.layers);
  free(m->gw.layers);
  memset(m, 0, sizeof(*m));
}

void model_init_random(model *m, uint64_t seed, float std, float embed_std) {
  for (int i = 0; i < m->n_tensors; i++) {
    const param_tensor *t = &m->tensors[i];
    const double s = i == 0 ? embed_std : std; /* tensor 0 is model.embed_tokens.weight */
    /* each value is a function of (seed, tensor, index) alone: any thread may draw it */
#pragma omp parallel for schedule(static)
    for (size_t j = 0; j < t->numel; j++) {
      const float v = t->ndim == 1 ? 1.0f
                                   : (float)(s * rng_normal(seed, RNG_STREAM_INIT, (uint64_t)i,
                                                            model_logical_index(t, j)));
      if (t->bf16)
        m->params16[t->offset + j] = bf16_from_f32(v);
      else
        m->params[t->offset + j] = v;
    }
  }
}

const param_tensor *model_find(const model *m, const char *name) {
  for (int i = 0; i < m->n_tensors; i++)
    if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
  return NULL;
}
