/* LoRA adapters (see lora.h): layout, initialisation, and the forward/backward pair of the
 * adapter term of a target linear. */
#include "gorp/lora.h"

#include "gorp/backend.h"
#include "gorp/dist.h"
#include "gorp/err.h"
#include "gorp/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const lora_target_names[LORA_N_TARGETS] = {"q", "k", "v", "o", "gate", "up", "down"};
const char *const lora_module_names[LORA_N_TARGETS] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
    "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};

int lora_parse_targets(unsigned *bits, char *const *names, int n, const char *key) {
  *bits = 0;
  if (n == 1 && !strcmp(names[0], "none")) return GORP_OK;
  for (int i = 0; i < n; i++) {
    if (!strcmp(names[i], "all")) {
      *bits = (1u << LORA_N_TARGETS) - 1;
      continue;
    }
    int t = 0;
    while (t < LORA_N_TARGETS && strcmp(names[i], lora_target_names[t])) t++;
    if (t == LORA_N_TARGETS)
      GORP_ERR(GORP_EINPUT,
               "%s: unknown target '%s' (expected q, k, v, o, gate, up, down, all, or none alone)",
               key, names[i]);
    *bits |= 1u << t;
  }
  return GORP_OK;
}

int lora_create(lora *lo, const model *m, unsigned targets, int r, float alpha, float dropout,
                int max_pairs) {
  memset(lo, 0, sizeof(*lo));
  const model_config *c = &m->cfg;
  lo->tp = m->tp;
  lo->targets = targets;
  lo->ops = m->ops;
  lo->r = r;
  lo->alpha = alpha;
  lo->scale = alpha / (float)r;
  lo->dropout = dropout;
  lo->L = c->num_layers;
  lo->max_pairs = max_pairs;
  for (int t = 0; t < LORA_N_TARGETS; t++) {
    /* the base linear's table entry (layer 0) gives this rank's shard and its place */
    const param_tensor *w = &m->tensors[model_linear_tensor(0, t)];
    lo->out[t] = (int)w->shape[0];
    lo->in[t] = (int)w->shape[1];
    lo->out_full[t] = (int)w->full[0];
    lo->in_full[t] = (int)w->full[1];
    lo->out_off[t] = w->split == SPLIT_ROWS ? (int)w->split_off : 0;
    lo->in_off[t] = w->split == SPLIT_COLS ? (int)w->split_off : 0;
    lo->off[t] = lo->layer_size;
    if (targets & (1u << t)) lo->layer_size += (size_t)r * (lo->in[t] + lo->out[t]);
  }
  lo->pair_size = lo->layer_size * (size_t)lo->L;
  GORP_CALL(model_array_alloc(m, (void **)&lo->params, lo->pair_size * (size_t)max_pairs,
                              sizeof(float), "LoRA adapters"));
  GORP_CALL(
      model_array_alloc(m, (void **)&lo->grads, lo->pair_size, sizeof(float), "LoRA gradients"));
  return GORP_OK;
}

void lora_free(lora *lo) {
  if (lo->ops) {
    lo->ops->free(lo->params);
    lo->ops->free(lo->grads);
    lo->ops->free(lo->h); /* h, xd, dh and dxd share one allocation */
    lo->ops->free(lo->row_keys);
  }
  free(lo->host_keys);
  memset(lo, 0, sizeof(*lo));
}

const float *lora_pair(const lora *lo, int p) {
  return lo->params + (size_t)p * lo->pair_size;
}

float *lora_A(const lora *lo, const float *base, int layer, int target) {
  return (float *)base + (size_t)layer * lo->layer_size + lo->off[target];
}

float *lora_Bt(const lora *lo, const float *base, int layer, int target) {
  return lora_A(lo, base, layer, target) + (size_t)lo->r * lo->in[target];
}

/* The widest input of the targets on this rank (the scratch rows' width). */
static int widest_input(const lora *lo) {
  int w = 0;
  for (int t = 0; t < LORA_N_TARGETS; t++) w = lo->in[t] > w ? lo->in[t] : w;
  return w;
}

int lora_begin_task(lora *lo, uint64_t seed, int task, int reuse) {
  if (reuse && lo->n_pairs == 1) return GORP_OK;
  if (lo->n_pairs == lo->max_pairs)
    GORP_ERR(GORP_EINPUT, "LoRA: all %d adapter pairs are in use", lo->max_pairs);
  const int p = lo->n_pairs++;
  float *pair = lo->params + (size_t)p * lo->pair_size;
  GORP_CALL(lo->ops->zero(pair, lo->pair_size * sizeof(float)));
  const int max_in = widest_input(lo);
  float *A; /* (r, in) host: one target's A, drawn here and uploaded */
  GORP_ALLOC(A, (size_t)lo->r * max_in, "a LoRA factor's initial values");
  int rc = GORP_OK;
  for (int l = 0; l < lo->L && !rc; l++)
    for (int t = 0; t < LORA_N_TARGETS && !rc; t++) {
      if (!(lo->targets & (1u << t))) continue;
      const int in = lo->in[t], in_full = lo->in_full[t];
      const double bound = 1.0 / sqrt((double)in_full);
      const uint64_t key = ((uint64_t)task << 32) | ((uint64_t)l << 8) | (uint64_t)t;
      for (size_t i = 0; i < (size_t)lo->r * in; i++) {
        const uint64_t logical = i / in * in_full + lo->in_off[t] + i % in;
        A[i] =
            (float)(bound *
                    (2.0 * rng_uniform(seed, RNG_STREAM_INIT, 0x10AA0000ULL + key, logical) - 1.0));
      }
      rc = lo->ops->upload(lora_A(lo, pair, l, t), A, (size_t)lo->r * in * sizeof(float));
    }
  free(A);
  GORP_CALL(rc);
  return lo->ops->zero(lo->grads, lo->pair_size * sizeof(float));
}

int lora_reserve(lora *lo, int N) {
  if (lo->h && N <= lo->N) return GORP_OK;
  lo->ops->free(lo->h);
  lo->ops->free(lo->row_keys);
  free(lo->host_keys);
  lo->h = NULL;
  lo->row_keys = lo->host_keys = NULL;
  GORP_CALL(lo->ops->alloc((void **)&lo->row_keys, (size_t)N * sizeof(uint64_t)));
  GORP_ALLOC(lo->host_keys, N, "LoRA dropout row keys");
  const int max_in = widest_input(lo);
  const size_t nh = (size_t)lo->L * LORA_N_TARGETS * N * lo->r;
  float *base;
  GORP_CALL(lo->ops->alloc((void **)&base,
                           (nh + 2 * (size_t)N * max_in + (size_t)N * lo->r) * sizeof(float)));
  lo->h = base;
  lo->xd = base + nh;
  lo->dxd = lo->xd + (size_t)N * max_in;
  lo->dh = lo->dxd + (size_t)N * max_in;
  lo->N = N;
  return GORP_OK;
}

/* Dropout masks are a pure function of (seed, step, layer, target, example, position, feature),
 * so the backward pass redraws the forward pass's mask instead of storing it, and a data-parallel
 * rank draws the same mask for an example as a single rank would. Each row's key mixes the step's
 * key with (layer, target, example, position); the table's dropout_rows (kernels.h's on the CPU)
 * draws the features from it on the logical input axis, so a TP shard draws its block of the same
 * mask. */
static int row_keys(lora *lo, const lora_dropout_ctx *d, uint64_t key, int layer, int target,
                    int N) {
  const uint64_t lt = ((uint64_t)layer * LORA_N_TARGETS + (uint64_t)target) << 52;
  for (int n = 0; n < N; n++) {
    const uint64_t pos = (uint64_t)d->example_ids[n / d->T] * 65536 + (uint64_t)(n % d->T);
    lo->host_keys[n] = rng_bits_keyed(key, lt ^ pos);
  }
  return lo->ops->upload(lo->row_keys, lo->host_keys, (size_t)N * sizeof(uint64_t));
}

/* The part of every mask draw that depends on the step only. */
static uint64_t mask_key(const lora_dropout_ctx *d) {
  return rng_key(d->seed, RNG_STREAM_DROPOUT, d->step_key);
}

static int dropout_on(const lora *lo, const lora_dropout_ctx *d) {
  return d && lo->dropout > 0.0f;
}

/* *x = xd (N, in) = drop(inp) (inverted dropout), or inp itself when dropout is off. */
static int dropped(const float **x, lora *lo, const float *inp, int layer, int target, int N,
                   const lora_dropout_ctx *d) {
  *x = inp;
  if (!dropout_on(lo, d)) return GORP_OK;
  GORP_CALL(row_keys(lo, d, mask_key(d), layer, target, N));
  GORP_CALL(lo->ops->dropout_rows(lo->xd, inp, lo->row_keys, N, lo->in[target], lo->in_off[target],
                                  lo->dropout, 0));
  *x = lo->xd;
  return GORP_OK;
}

int lora_forward_add(lora *lo, float *out, const float *inp, int layer, int target, int N,
                     const lora_dropout_ctx *d, int save) {
  const backend_ops *be = backend_get();
  const int in = lo->in[target], o = lo->out[target], r = lo->r;
  const float *x;
  GORP_CALL(dropped(&x, lo, inp, layer, target, N, d));
  float *h = save ? lo->h + ((size_t)layer * LORA_N_TARGETS + target) * lo->N * r : lo->dh;
  for (int p = 0; p < lo->n_pairs; p++) {
    const float *pair = lora_pair(lo, p);
    float *hp = p == lo->n_pairs - 1 ? h : lo->dh; /* keep the active pair's h */
    GORP_CALL(
        be->gemm(0, 1, N, r, in, 1.0f, x, in, lora_A(lo, pair, layer, target), in, 0.0f, hp, r));
    GORP_CALL(be->gemm(0, 0, N, o, r, lo->scale, hp, r, lora_Bt(lo, pair, layer, target), o, 1.0f,
                       out, o));
  }
  return GORP_OK;
}

int lora_backward(lora *lo, float *dinp, const float *dout, const float *inp, int layer, int target,
                  int N, const lora_dropout_ctx *d) {
  const backend_ops *be = backend_get();
  const int in = lo->in[target], o = lo->out[target], r = lo->r, active = lo->n_pairs - 1;
  const float *x;
  GORP_CALL(dropped(&x, lo, inp, layer, target, N, d));
  const float *h = lo->h + ((size_t)layer * LORA_N_TARGETS + target) * lo->N * r;
  GORP_CALL(lo->ops->zero(lo->dxd, (size_t)N * in * sizeof(float)));
  for (int p = 0; p < lo->n_pairs; p++) {
    const float *pair = lora_pair(lo, p);
    const float *A = lora_A(lo, pair, layer, target), *Bt = lora_Bt(lo, pair, layer, target);
    /* dh (N, r) = scale * dout Bt^T ; d(drop x) += dh A */
    GORP_CALL(be->gemm(0, 1, N, r, o, lo->scale, dout, o, Bt, o, 0.0f, lo->dh, r));
    GORP_CALL(be->gemm(0, 0, N, in, r, 1.0f, lo->dh, r, A, in, 1.0f, lo->dxd, in));
    if (p != active) continue;
    GORP_CALL(be->gemm(1, 0, r, o, N, lo->scale, h, r, dout, o, 1.0f,
                       lora_Bt(lo, lo->grads, layer, target), o));
    GORP_CALL(be->gemm(1, 0, r, in, N, 1.0f, lo->dh, r, x, in, 1.0f,
                       lora_A(lo, lo->grads, layer, target), in));
  }
  /* through the dropout: the forward pass's mask, redrawn, scales the gradient; without dropout
   * the same op with p = 0 keeps every feature at scale 1, dinp += dxd exactly (the keys are then
   * never compared: any key keeps a feature) */
  if (!dropout_on(lo, d))
    return lo->ops->dropout_rows(dinp, lo->dxd, lo->row_keys, N, in, lo->in_off[target], 0.0f, 1);
  GORP_CALL(row_keys(lo, d, mask_key(d), layer, target, N));
  return lo->ops->dropout_rows(dinp, lo->dxd, lo->row_keys, N, in, lo->in_off[target], lo->dropout,
                               1);
}

int lora_tensor_target(const lora *lo, const model *m, const param_tensor *t, int *layer) {
  int l, used = 0;
  /* HF names: model.layers.<l>.<module>.weight */
  if (sscanf(t->name, "model.layers.%d.%n", &l, &used) != 1 || !used || l < 0 ||
      l >= m->cfg.num_layers)
    return -1;
  for (int tg = 0; tg < LORA_N_TARGETS; tg++) {
    const size_t n = strlen(lora_module_names[tg]);
    if (lo->targets >> tg & 1 && !strncmp(t->name + used, lora_module_names[tg], n) &&
        !strcmp(t->name + used + n, ".weight")) {
      *layer = l;
      return tg;
    }
  }
  return -1;
}

int lora_merge(const lora *lo, float *w, int layer, int target) {
  const backend_ops *be = backend_get();
  const int in = lo->in[target], o = lo->out[target];
  for (int p = 0; p < lo->n_pairs; p++) { /* w += scale * Bt^T A */
    const float *pair = lora_pair(lo, p);
    GORP_CALL(be->gemm(1, 0, o, in, lo->r, lo->scale, lora_Bt(lo, pair, layer, target), o,
                       lora_A(lo, pair, layer, target), in, 1.0f, w, in));
  }
  return GORP_OK;
}

int lora_factor_split(const lora *lo, int t, int which) {
  return which ? lo->out[t] != lo->out_full[t] : lo->in[t] != lo->in_full[t];
}

int lora_tp_sum_grads(lora *lo) {
  if (!lo->tp) return GORP_OK;
  for (int l = 0; l < lo->L; l++)
    for (int t = 0; t < LORA_N_TARGETS; t++) {
      if (!(lo->targets >> t & 1)) continue;
      if (!lora_factor_split(lo, t, 0))
        GORP_CALL(
            dist_tp_sum_floats(lo->tp, lora_A(lo, lo->grads, l, t), (size_t)lo->r * lo->in[t]));
      if (!lora_factor_split(lo, t, 1))
        GORP_CALL(
            dist_tp_sum_floats(lo->tp, lora_Bt(lo, lo->grads, l, t), (size_t)lo->r * lo->out[t]));
    }
  return GORP_OK;
}

static float sign_of(float x) {
  return (float)((x > 0.0f) - (x < 0.0f));
}

int lora_olora_penalty(lora *lo, float lambda1, float lambda2, double *value) {
  const int active = lo->n_pairs - 1, r = lo->r;
  const float *pair = lora_pair(lo, active);
  *value = 0.0;
  double *O = NULL;
  if (lambda1 > 0.0f && active > 0) GORP_ALLOC(O, (size_t)r * r, "O-LoRA overlaps");
  int rc = GORP_OK;
  for (int l = 0; l < lo->L && !rc; l++)
    for (int t = 0; t < LORA_N_TARGETS && !rc; t++) {
      if (!(lo->targets >> t & 1)) continue;
      const int in = lo->in[t];
      const float *An = lora_A(lo, pair, l, t);
      float *gA = lora_A(lo, lo->grads, l, t);
      for (int p = 0; p < active && lambda1 > 0.0f && !rc; p++) {
        const float *Ap = lora_A(lo, lora_pair(lo, p), l, t);
        for (int j = 0; j < r; j++) /* O_jk = A_p[j] . A_new[k], over this rank's columns */
          for (int k = 0; k < r; k++) {
            double o = 0.0;
            for (int i = 0; i < in; i++)
              o += (double)Ap[(size_t)j * in + i] * An[(size_t)k * in + i];
            O[(size_t)j * r + k] = o;
          }
        if (lora_factor_split(lo, t, 0) && (rc = dist_tp_sum_doubles(lo->tp, O, (size_t)r * r)))
          break;
        for (int j = 0; j < r; j++)
          for (int k = 0; k < r; k++) {
            const double o = O[(size_t)j * r + k];
            *value += lambda1 * fabs(o);
            const float g = lambda1 * sign_of((float)o);
            for (int i = 0; i < in; i++) gA[(size_t)k * in + i] += g * Ap[(size_t)j * in + i];
          }
      }
      if (lambda2 <= 0.0f || rc) continue;
      float *mats[2] = {(float *)An, lora_Bt(lo, pair, l, t)};
      float *grads[2] = {gA, lora_Bt(lo, lo->grads, l, t)};
      const size_t sizes[2] = {(size_t)r * in, (size_t)r * lo->out[t]};
      for (int k = 0; k < 2 && !rc; k++) {
        double ss = 0.0; /* ||X||_F^2 over the whole factor: summed over a split one's shards */
        for (size_t i = 0; i < sizes[k]; i++) ss += (double)mats[k][i] * mats[k][i];
        if (lora_factor_split(lo, t, k) && (rc = dist_tp_sum_doubles(lo->tp, &ss, 1))) break;
        const double norm = sqrt(ss);
        *value += lambda2 * norm;
        if (norm > 0.0)
          for (size_t i = 0; i < sizes[k]; i++) grads[k][i] += (float)(lambda2 * mats[k][i] / norm);
      }
    }
  free(O);
  return rc;
}

double lora_l1_penalty(lora *lo, float lambda) {
  const float *pair = lora_pair(lo, lo->n_pairs - 1);
  double value = 0.0;
  for (size_t i = 0; i < lo->pair_size; i++) {
    value += lambda * fabs(pair[i]);
    lo->grads[i] += lambda * sign_of(pair[i]);
  }
  return value;
}
