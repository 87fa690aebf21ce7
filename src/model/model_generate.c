/* Greedy decoding with a key/value cache: the prompt goes through model_forward in one batch
 * (GEMMs), its keys/values are copied into the cache, then each new token costs one
 * matrix-vector pass per layer. */
#include "gorp/model.h"

#include "gorp/dist.h"
#include "gorp/err.h"
#include "gorp/lora.h"
#include "gorp/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int kv_reserve(model *m) {
  model_kv *kv = &m->kv;
  if (kv->k) return GORP_OK;
  const model_config *c = &m->cfg;
  const size_t S = c->max_seq, L = c->num_layers, C = c->hidden_size, F = m->F_loc,
               QD = (size_t)m->H_loc * c->head_dim, KD = (size_t)m->KV_loc * c->head_dim,
               half = c->head_dim / 2;
  float *base;
  GORP_ALLOC(base, 2 * L * S * KD + 3 * C + 2 * QD + 2 * F + S + c->vocab_size + 2 * S * half,
             "decoding key/value cache");
  kv->S = (int)S;
  kv->k = base;
  kv->v = kv->k + L * S * KD;
  kv->x = kv->v + L * S * KD;
  kv->xn = kv->x + C;
  kv->q = kv->xn + C;
  kv->y = kv->q + QD;
  kv->g = kv->y + QD;
  kv->u = kv->g + F;
  kv->scores = kv->u + F;
  kv->logits = kv->scores + S;
  kv->part = kv->logits + c->vocab_size;
  kv->cos_t = kv->part + C;
  kv->sin_t = kv->cos_t + S * half;
  rope_tables(kv->cos_t, kv->sin_t, 0, (int)S, c->head_dim, c->rope_theta);
  return GORP_OK;
}

/* The adapter term at one position (no dropout: decoding is evaluation). */
static void lora_row(model *m, float *out, const float *inp, int l, int t) {
  if (m->lora && (m->lora->targets & (1u << t)))
    lora_forward_add(m->lora, out, inp, l, t, 1, NULL, 0);
}

static int argmax(const float *x, int n) {
  int best = 0;
  for (int i = 1; i < n; i++)
    if (x[i] > x[best]) best = i;
  return best;
}

/* x (C) += inp (in) W^T (+ LoRA) for a row-parallel linear at one position; under TP the ranks'
 * partial outputs are summed first. */
static int row_parallel_add(model *m, const float *inp, const float *W, int l, int target, int in) {
  model_kv *kv = &m->kv;
  const int C = m->cfg.hidden_size;
  if (!m->tp) {
    matmul_forward_add(kv->x, inp, W, 1, in, C);
    lora_row(m, kv->x, inp, l, target);
    return GORP_OK;
  }
  matmul_forward(kv->part, inp, W, 1, in, C);
  lora_row(m, kv->part, inp, l, target);
  GORP_CALL(dist_tp_sum_floats(m->tp, kv->part, (size_t)C));
  for (int i = 0; i < C; i++) kv->x[i] += kv->part[i];
  return GORP_OK;
}

/* One position through every layer, reading and extending the cache; fills kv->logits. */
static int decode_step(model *m, int token, int pos) {
  const model_config *c = &m->cfg;
  model_kv *kv = &m->kv;
  const int C = c->hidden_size, F = m->F_loc, H = m->H_loc, KV = m->KV_loc, D = c->head_dim,
            QD = H * D, KD = KV * D, group = H / KV, S = kv->S;
  const float scale = 1.0f / sqrtf((float)D);
  const float *cs = kv->cos_t + (size_t)pos * (D / 2), *sn = kv->sin_t + (size_t)pos * (D / 2);
  float rstd;
  embedding_forward(kv->x, &token, m->w.embed, 1, C);
  for (int l = 0; l < c->num_layers; l++) {
    const layer_params *p = &m->w.layers[l];
    float *kc = kv->k + (size_t)l * S * KD, *vc = kv->v + (size_t)l * S * KD;
    rmsnorm_forward(kv->xn, &rstd, kv->x, p->ln1, 1, C, c->rms_eps);
    matmul_forward(kv->q, kv->xn, p->wq, 1, C, QD);
    lora_row(m, kv->q, kv->xn, l, LORA_Q);
    matmul_forward(kc + (size_t)pos * KD, kv->xn, p->wk, 1, C, KD);
    lora_row(m, kc + (size_t)pos * KD, kv->xn, l, LORA_K);
    matmul_forward(vc + (size_t)pos * KD, kv->xn, p->wv, 1, C, KD);
    lora_row(m, vc + (size_t)pos * KD, kv->xn, l, LORA_V);
    rope_forward(kv->q, cs, sn, 1, 1, H, D);
    rope_forward(kc + (size_t)pos * KD, cs, sn, 1, 1, KV, D);
    for (int h = 0; h < H; h++) {
      const float *qh = kv->q + (size_t)h * D;
      const int kh = h / group;
      float mx = -INFINITY;
      for (int j = 0; j <= pos; j++) {
        const float *kj = kc + (size_t)j * KD + (size_t)kh * D;
        float s = 0.0f;
        for (int d = 0; d < D; d++) s += qh[d] * kj[d];
        kv->scores[j] = s * scale;
        mx = kv->scores[j] > mx ? kv->scores[j] : mx;
      }
      double sum = 0.0;
      for (int j = 0; j <= pos; j++) {
        kv->scores[j] = expf(kv->scores[j] - mx);
        sum += kv->scores[j];
      }
      float *yh = kv->y + (size_t)h * D;
      memset(yh, 0, (size_t)D * sizeof(float));
      for (int j = 0; j <= pos; j++) {
        const float w = (float)(kv->scores[j] / sum);
        const float *vj = vc + (size_t)j * KD + (size_t)kh * D;
        for (int d = 0; d < D; d++) yh[d] += w * vj[d];
      }
    }
    GORP_CALL(row_parallel_add(m, kv->y, p->wo, l, LORA_O, QD));
    rmsnorm_forward(kv->xn, &rstd, kv->x, p->ln2, 1, C, c->rms_eps);
    matmul_forward(kv->g, kv->xn, p->wg, 1, C, F);
    lora_row(m, kv->g, kv->xn, l, LORA_GATE);
    matmul_forward(kv->u, kv->xn, p->wu, 1, C, F);
    lora_row(m, kv->u, kv->xn, l, LORA_UP);
    swiglu_forward(kv->g, kv->g, kv->u, F);
    GORP_CALL(row_parallel_add(m, kv->g, p->wd, l, LORA_DOWN, F));
  }
  rmsnorm_forward(kv->xn, &rstd, kv->x, m->w.norm, 1, C, c->rms_eps);
  matmul_forward(kv->logits, kv->xn, m->w.head, 1, C, c->vocab_size);
  return GORP_OK;
}

int model_generate(model *m, const int *prompt, int n_prompt, int max_new, int eos, int *out,
                   int *n_out) {
  const model_config *c = &m->cfg;
  *n_out = 0;
  if (n_prompt < 1) GORP_ERR(GORP_EINPUT, "model_generate: empty prompt");
  if (n_prompt + max_new > c->max_seq)
    GORP_ERR(GORP_EINPUT,
             "prompt of %d tokens + %d new tokens exceeds max_position_embeddings = %d", n_prompt,
             max_new, c->max_seq);
  GORP_CALL(kv_reserve(m));
  GORP_CALL(model_forward(m, prompt, NULL, 1, n_prompt, 0.0f, NULL));
  const size_t KD = (size_t)m->KV_loc * c->head_dim;
  for (int l = 0; l < c->num_layers; l++) {
    memcpy(m->kv.k + (size_t)l * m->kv.S * KD, m->acts.k + (size_t)l * n_prompt * KD,
           (size_t)n_prompt * KD * sizeof(float));
    memcpy(m->kv.v + (size_t)l * m->kv.S * KD, m->acts.v + (size_t)l * n_prompt * KD,
           (size_t)n_prompt * KD * sizeof(float));
  }
  int next = argmax(m->acts.logits + (size_t)(n_prompt - 1) * c->vocab_size, c->vocab_size);
  for (int i = 0; i < max_new; i++) {
    if (next == eos) break;
    out[(*n_out)++] = next;
    if (i + 1 == max_new) break;
    GORP_CALL(decode_step(m, next, n_prompt + i));
    next = argmax(m->kv.logits, c->vocab_size);
  }
  return GORP_OK;
}
