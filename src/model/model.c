/* Whole-model forward and backward of the LLaMA decoder on one rank, built from the op pairs in
 * ops.c, and the one layer forward (model_layer.h) that greedy decoding runs too. Activations live
 * in one allocation sized by model_reserve (see model.h). */
#include "gorp/model.h"

#include "model_layer.h"

#include "gorp/backend.h"
#include "gorp/dist.h"
#include "gorp/err.h"
#include "gorp/lora.h"
#include "gorp/ops.h"

#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int model_reserve(model *m, int B, int T) {
  model_acts *a = &m->acts;
  const model_config *c = &m->cfg;
  const int KL = m->recompute ? 1 : c->num_layers; /* layers whose activations are kept */
  if (model_dims_fit(a->x != NULL, a->B, a->T, &B, &T) && a->kept_layers == KL) return GORP_OK;
  const size_t L = c->num_layers, K = KL, N = (size_t)B * T, C = c->hidden_size, F = m->F_loc,
               QD = (size_t)m->H_loc * c->head_dim, KD = (size_t)m->KV_loc * c->head_dim,
               V = c->vocab_size, H = m->H_loc, half = c->head_dim / 2;
  const int n_datt = omp_get_max_threads();
  const size_t wide = model_widest(c, m->tp_size);
  struct {
    float **ptr;
    size_t n;
  } parts[] = {{&a->x, (L + 1) * N * C},
               {&a->xmid, K * N * C},
               {&a->ln1, K * N * C},
               {&a->rstd1, K * N},
               {&a->q, K * N * QD},
               {&a->k, K * N * KD},
               {&a->v, K * N * KD},
               {&a->att, K * B * H * T * T},
               {&a->atty, K * N * QD},
               {&a->ln2, K * N * C},
               {&a->rstd2, K * N},
               {&a->g, K * N * F},
               {&a->u, K * N * F},
               {&a->h, K * N * F},
               {&a->lnf, N * C},
               {&a->head_in, N * C},
               {&a->rstdf, N},
               {&a->logits, N * V},
               {&a->head_w, N},
               {&a->rope_cos, (size_t)T * half},
               {&a->rope_sin, (size_t)T * half},
               {&a->dx, N * C},
               {&a->dbuf, N * wide},
               {&a->dbuf2, N * wide},
               {&a->dq, N * QD},
               {&a->dk, N * KD},
               {&a->dv, N * KD},
               {&a->dg, N * F},
               {&a->du, N * F},
               {&a->datt, (size_t)n_datt * T * T}};
  const size_t n_parts = sizeof(parts) / sizeof(parts[0]);
  /* the sizes above cannot wrap (model_config_check bounds every dimension by 2^24, layers by
   * 2^16), but B and T come from the data: the forward pass holds B * T in an int, and the
   * total must fit in memory's address space */
  size_t total = 0, big;
  if ((size_t)B * T > INT_MAX || __builtin_mul_overflow(K * B * H, (size_t)T * T, &big))
    GORP_ERR(GORP_EINPUT, "a batch of %d sequences x %d tokens is too large for this model", B, T);
  for (size_t i = 0; i < n_parts; i++)
    if (__builtin_add_overflow(total, parts[i].n, &total) || total > SIZE_MAX / sizeof(float))
      GORP_ERR(GORP_EINPUT, "a batch of %d sequences x %d tokens is too large for this model", B,
               T);
  m->ops->free(a->x);
  m->ops->free(a->ids);
  free(a->host_rows);
  memset(a, 0, sizeof(*a));
  GORP_CALL(model_array_alloc(m, (void **)&a->ids, 4 * N, sizeof(int), "a batch's token ids"));
  a->head_rows = a->ids + 2 * N;
  char *host; /* host_rows (2N ints), host_w (N floats), host_rope (2 T half floats) */
  GORP_ALLOC(host, (3 * N + 2 * (size_t)T * half) * 4, "the host side of a batch's head rows");
  a->host_rows = (int *)host;
  a->host_w = (float *)(host + 2 * N * sizeof(int));
  a->host_rope = a->host_w + N;
  float *base;
  GORP_CALL(model_array_alloc(m, (void **)&base, total, sizeof(float), "model activations"));
  for (size_t i = 0; i < n_parts; i++) {
    *parts[i].ptr = base;
    base += parts[i].n;
  }
  a->B = B;
  a->T = T;
  a->n_datt = n_datt;
  a->kept_layers = KL;
  return GORP_OK;
}

/* Layer l's input, output and saved activations for a batch of B x T: its own slot of the
 * per-layer buffers, or under recompute the one slot every layer shares. */
static layer_acts layer_slot(model *m, int l, int B, int T) {
  const model_acts *a = &m->acts;
  const model_config *c = &m->cfg;
  const size_t N = (size_t)B * T, C = c->hidden_size, F = m->F_loc,
               QD = (size_t)m->H_loc * c->head_dim, KD = (size_t)m->KV_loc * c->head_dim,
               s = m->recompute ? 0 : (size_t)l;
  return (layer_acts){.x = a->x + (size_t)l * N * C,
                      .ln1 = a->ln1 + s * N * C,
                      .rstd1 = a->rstd1 + s * N,
                      .q = a->q + s * N * QD,
                      .k = a->k + s * N * KD,
                      .v = a->v + s * N * KD,
                      .atty = a->atty + s * N * QD,
                      .xmid = a->xmid + s * N * C,
                      .ln2 = a->ln2 + s * N * C,
                      .rstd2 = a->rstd2 + s * N,
                      .g = a->g + s * N * F,
                      .u = a->u + s * N * F,
                      .h = a->h + s * N * F,
                      .xout = a->x + (size_t)(l + 1) * N * C};
}

/* Layer l's causal attention over B sequences of T positions, its probabilities in its slot. */
static layer_attention layer_attention_of(model *m, int l, int B, int T) {
  const model_acts *a = &m->acts;
  const size_t s = m->recompute ? 0 : (size_t)l;
  return (layer_attention){.B = B,
                           .T = T,
                           .cos_t = a->rope_cos,
                           .sin_t = a->rope_sin,
                           .att = a->att + s * B * m->H_loc * (size_t)T * T};
}

/* x (n floats, in the model's memory) = 0 */
static int zero_floats(const model *m, float *x, size_t n) {
  return m->ops->zero(x, n * sizeof(float));
}

/* Linear `target` of layer l as the ops read it (fp32 or bf16). */
static op_weight lin(const model *m, int l, int target) {
  return model_weight(m, model_linear_tensor(l, target));
}

/* The adapter term of linear (layer, target), when that target carries LoRA; save keeps its
 * activations for the backward pass. */
static int lora_fwd(model *m, float *out, const float *inp, int l, int t, int N,
                    const lora_dropout_ctx *d, int save) {
  if (m->lora && (m->lora->targets & (1u << t)))
    GORP_CALL(lora_forward_add(m->lora, out, inp, l, t, N, d, save));
  return GORP_OK;
}

static int lora_bwd(model *m, float *dinp, const float *dout, const float *inp, int l, int t,
                    int N) {
  if (m->lora && (m->lora->targets & (1u << t)))
    GORP_CALL(lora_backward(m->lora, dinp, dout, inp, l, t, N, m->step.dropout));
  return GORP_OK;
}

/* out (N, C) = res + inp (N, in) W^T (+ LoRA) for a row-parallel linear (o, down): under TP each
 * rank's inp and W hold a block of the input axis, so the ranks' partial outputs are summed (g);
 * rank 0 adds the residual once. */
static int row_parallel_forward(model *m, float *out, const float *res, const float *inp, int l,
                                int target, int N, int in, int C, const lora_dropout_ctx *d,
                                int save) {
  if (m->tp_rank == 0) {
    GORP_CALL(m->ops->copy(out, res, (size_t)N * C * sizeof(float)));
    GORP_CALL(matmul_forward_add(out, inp, lin(m, l, target), N, in, C));
  } else {
    GORP_CALL(matmul_forward(out, inp, lin(m, l, target), N, in, C));
  }
  GORP_CALL(lora_fwd(m, out, inp, l, target, N, d, save));
  return m->tp ? dist_tp_sum_floats(m->tp, out, (size_t)N * C) : GORP_OK;
}

/* The attention of a layer's rows given their q, k, v (N, *) before RoPE: training attends within
 * each sequence; decoding first stores each row's key and value into its sequence's cache. */
static int layer_attention_forward(const model *m, const layer_acts *a, const layer_attention *at) {
  const int H = m->H_loc, KV = m->KV_loc, D = m->cfg.head_dim, KD = KV * D;
  GORP_CALL(m->ops->rope_forward(a->q, at->cos_t, at->sin_t, at->B, at->T, H, D));
  GORP_CALL(m->ops->rope_forward(a->k, at->cos_t, at->sin_t, at->B, at->T, KV, D));
  if (!at->kc) {
    GORP_CALL(
        m->ops->attention_forward(a->atty, at->att, a->q, a->k, a->v, at->B, at->T, H, KV, D));
    return GORP_OK;
  }
  GORP_CALL(m->ops->rows_scatter(at->kc, a->k, at->rows, at->T, KD));
  GORP_CALL(m->ops->rows_scatter(at->vc, a->v, at->rows, at->T, KD));
  return m->ops->attention_decode(a->atty, a->q, at->kc, at->vc, at->seq, at->pos, at->scratch,
                                  at->n_scratch, at->T, at->S, H, KV, D);
}

int model_embed(const model *m, float *out, const int *tokens, int N) {
  const op_weight emb = model_weight(m, 0);
  const int C = m->cfg.hidden_size;
  return emb.h ? m->ops->embedding_forward_bf16(out, tokens, emb.h, N, C)
               : m->ops->embedding_forward(out, tokens, emb.f, N, C);
}

int model_layer_forward(model *m, int l, const layer_acts *a, const layer_attention *at,
                        const lora_dropout_ctx *d) {
  const model_config *c = &m->cfg;
  const layer_params *p = &m->w.layers[l];
  const int N = at->B * at->T, C = c->hidden_size, F = m->F_loc, QD = m->H_loc * c->head_dim,
            KD = m->KV_loc * c->head_dim, save = !at->kc;
  GORP_CALL(m->ops->rmsnorm_forward(a->ln1, a->rstd1, a->x, p->ln1, N, C, c->rms_eps));
  GORP_CALL(matmul_forward(a->q, a->ln1, lin(m, l, LORA_Q), N, C, QD));
  GORP_CALL(lora_fwd(m, a->q, a->ln1, l, LORA_Q, N, d, save));
  GORP_CALL(matmul_forward(a->k, a->ln1, lin(m, l, LORA_K), N, C, KD));
  GORP_CALL(lora_fwd(m, a->k, a->ln1, l, LORA_K, N, d, save));
  GORP_CALL(matmul_forward(a->v, a->ln1, lin(m, l, LORA_V), N, C, KD));
  GORP_CALL(lora_fwd(m, a->v, a->ln1, l, LORA_V, N, d, save));
  GORP_CALL(layer_attention_forward(m, a, at));
  GORP_CALL(row_parallel_forward(m, a->xmid, a->x, a->atty, l, LORA_O, N, QD, C, d, save));
  GORP_CALL(m->ops->rmsnorm_forward(a->ln2, a->rstd2, a->xmid, p->ln2, N, C, c->rms_eps));
  GORP_CALL(matmul_forward(a->g, a->ln2, lin(m, l, LORA_GATE), N, C, F));
  GORP_CALL(lora_fwd(m, a->g, a->ln2, l, LORA_GATE, N, d, save));
  GORP_CALL(matmul_forward(a->u, a->ln2, lin(m, l, LORA_UP), N, C, F));
  GORP_CALL(lora_fwd(m, a->u, a->ln2, l, LORA_UP, N, d, save));
  GORP_CALL(m->ops->swiglu_forward(a->h, a->g, a->u, N * F));
  return row_parallel_forward(m, a->xout, a->xmid, a->h, l, LORA_DOWN, N, F, C, d, save);
}

/* The input gradient of the column-parallel linears (N, C): each rank holds the part that flows
 * through its rows, so the parts are summed (f) before it reaches the norm. */
static int column_parallel_input_grad(model *m, float *dinp, int N, int C) {
  return m->tp ? dist_tp_sum_floats(m->tp, dinp, (size_t)N * C) : GORP_OK;
}

/* The rows of (B, T) whose logits this pass computes (step.head), listed in acts.head_rows with
 * their targets after them, their loss weights in acts.head_w (MODEL_HEAD_ALL: each row's
 * weight when the step has weights): computed on the host and uploaded. Sets acts.n_head_rows. */
static int head_rows_select(model *m, const int *targets, int B, int T) {
  model_acts *a = &m->acts;
  const int N = B * T;
  const float *w = m->step.loss_weights;
  int *rows = a->host_rows, R = 0;
  switch (m->step.head) {
  case MODEL_HEAD_ALL:
    for (int i = 0; i < N; i++) rows[i] = i;
    if (w) memcpy(a->host_w, w, (size_t)N * sizeof(float));
    R = N;
    break;
  case MODEL_HEAD_TARGETS:
    for (int i = 0; i < N; i++)
      if (targets[i] >= 0) {
        rows[N + R] = targets[i];
        a->host_w[R] = w ? w[i] : 1.0f;
        rows[R++] = i;
      }
    break;
  case MODEL_HEAD_LAST:
    for (int b = 0; b < B; b++) rows[R++] = b * T + T - 1;
    break;
  case MODEL_HEAD_NONE:
    break;
  }
  a->n_head_rows = R;
  const size_t ints = (size_t)R * sizeof(int), floats = (size_t)R * sizeof(float);
  GORP_CALL(m->ops->upload(a->head_rows, rows, ints));
  if (m->step.head == MODEL_HEAD_TARGETS)
    GORP_CALL(m->ops->upload(a->head_rows + N, rows + N, ints));
  if (m->step.head == MODEL_HEAD_TARGETS || (m->step.head == MODEL_HEAD_ALL && w))
    GORP_CALL(m->ops->upload(a->head_w, a->host_w, floats));
  return GORP_OK;
}

/* The adapters must live where the model does; a model in another backend's memory than the
 * host's runs on one rank with fp32 trained products so far (the TP sums and bf16.h's products
 * of trained matrices still read host memory). */
static int model_ops_check(const model *m, const char *what) {
  if (m->lora && m->lora->ops != m->ops)
    GORP_ERR(GORP_EINPUT, "%s: LoRA adapters in %s memory on a model in %s memory", what,
             m->lora->ops->name, m->ops->name);
  if (m->ops == backend_host()) return GORP_OK;
  if (m->tp || m->trained_bf16)
    GORP_ERR(
        GORP_EINPUT,
        "%s: a model in %s memory runs on one rank with fp32 trained products so far (this one "
        "has %s)",
        what, m->ops->name, m->tp ? "tensor parallelism" : "bf16 trained products");
  return GORP_OK;
}

int model_forward(model *m, const int *tokens, const int *targets, const model_step *step, int B,
                  int T, float loss_div, float *loss) {
  const model_config *c = &m->cfg;
  if (T > c->max_seq)
    GORP_ERR(GORP_EINPUT, "sequence length %d exceeds max_position_embeddings = %d", T, c->max_seq);
  const model_head_mode head = step ? step->head : MODEL_HEAD_ALL;
  if (targets && (head == MODEL_HEAD_LAST || head == MODEL_HEAD_NONE))
    GORP_ERR(GORP_EINPUT, "model_forward: targets need the head's rows with targets (or all)");
  if (!targets && head == MODEL_HEAD_TARGETS)
    GORP_ERR(GORP_EINPUT, "model_forward: MODEL_HEAD_TARGETS without targets");
  if ((int64_t)B * T > INT_MAX) /* N = B * T is an int below */
    GORP_ERR(GORP_EINPUT, "a batch of %d sequences x %d tokens is too large for this model", B, T);
  for (int i = 0; i < B * T; i++)
    if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
      GORP_ERR(GORP_EINPUT,
               "token id %d at sequence %d, position %d is outside the vocabulary [0, %d)",
               tokens[i], i / T, i % T, c->vocab_size);
  GORP_CALL(model_ops_check(m, "model_forward"));
  GORP_CALL(model_reserve(m, B, T));
  GORP_CALL(model_scratch16_reserve(m, (size_t)B * T));
  if (m->lora) GORP_CALL(lora_reserve(m->lora, B * T));
  model_acts *a = &m->acts;
  const int L = c->num_layers, N = B * T, C = c->hidden_size, D = c->head_dim, V = c->vocab_size;
  const size_t half = (size_t)T * (D / 2);
  m->has_targets = targets != NULL;
  m->step = step ? *step : (model_step){0};
  m->B = B;
  m->T = T;
  GORP_CALL(m->ops->upload(a->ids, tokens, (size_t)N * sizeof(int)));
  if (targets) GORP_CALL(m->ops->upload(a->ids + N, targets, (size_t)N * sizeof(int)));
  rope_tables(a->host_rope, a->host_rope + half, 0, T, D, c->rope_theta);
  GORP_CALL(m->ops->upload(a->rope_cos, a->host_rope, half * sizeof(float)));
  GORP_CALL(m->ops->upload(a->rope_sin, a->host_rope + half, half * sizeof(float)));
  GORP_CALL(model_embed(m, a->x, a->ids, N));
  for (int l = 0; l < L; l++) {
    const layer_acts la = layer_slot(m, l, B, T);
    const layer_attention at = layer_attention_of(m, l, B, T);
    GORP_CALL(model_layer_forward(m, l, &la, &at, m->step.dropout));
  }
  GORP_CALL(m->ops->rmsnorm_forward(a->lnf, a->rstdf, a->x + (size_t)L * N * C, m->w.norm, N, C,
                                    c->rms_eps));
  GORP_CALL(head_rows_select(m, targets, B, T));
  const int R = a->n_head_rows;
  const float *head_in = a->lnf;
  if (R && m->step.head != MODEL_HEAD_ALL) {
    GORP_CALL(m->ops->rows_gather(a->head_in, a->lnf, a->head_rows, R, C));
    head_in = a->head_in;
  }
  if (R)
    GORP_CALL(matmul_forward(a->logits, head_in, model_weight(m, model_head_tensor(m)), R, C, V));
  m->n_targets = 0;
  if (targets) {
    const int all = m->step.head == MODEL_HEAD_ALL;
    double sum;
    const float *w = all && !m->step.loss_weights ? NULL : a->head_w;
    GORP_CALL(m->ops->crossentropy_forward(&sum, &m->n_targets, a->logits,
                                           all ? a->ids + N : a->head_rows + N, w, R, V));
    m->loss_div = loss_div > 0 ? loss_div : (float)(m->n_targets ? m->n_targets : 1);
    if (loss) *loss = (float)(sum / m->loss_div);
  }
  return GORP_OK;
}

int model_backward(model *m) {
  if (!m->has_targets)
    GORP_ERR(GORP_EINPUT, "model_backward: the last forward pass had no targets");
  GORP_CALL(model_alloc_grads(m));
  const model_config *c = &m->cfg;
  model_acts *a = &m->acts;
  const int B = m->B, T = m->T, L = c->num_layers, N = B * T, C = c->hidden_size, F = m->F_loc,
            H = m->H_loc, KV = m->KV_loc, D = c->head_dim, QD = H * D, KD = KV * D,
            V = c->vocab_size;
  const size_t NC = (size_t)N * C;
  float *dx = a->dx;
  if (m->step.head == MODEL_HEAD_ALL) {
    GORP_CALL(m->ops->crossentropy_backward(
        a->logits, a->ids + N, m->step.loss_weights ? a->head_w : NULL, N, V, m->loss_div));
    GORP_CALL(matmul_backward_set(a->dbuf, m->gw.head, a->logits, a->lnf,
                                  model_weight(m, model_head_tensor(m)), N, C, V));
  } else { /* the R rows' gradient, scattered into (B, T); the other rows get none */
    const int R = a->n_head_rows, *rows = a->head_rows;
    GORP_CALL(m->ops->crossentropy_backward(a->logits, rows + N, a->head_w, R, V, m->loss_div));
    if (R)
      GORP_CALL(matmul_backward_set(dx, m->gw.head, a->logits, a->head_in,
                                    model_weight(m, model_head_tensor(m)), R, C, V));
    GORP_CALL(zero_floats(m, a->dbuf, NC));
    GORP_CALL(m->ops->rows_scatter(a->dbuf, dx, rows, R, C));
  }
  GORP_CALL(zero_floats(m, dx, NC));
  GORP_CALL(m->ops->rmsnorm_backward(dx, m->gw.norm, a->dbuf, a->x + (size_t)L * NC, m->w.norm,
                                     a->rstdf, N, C));
  for (int l = L - 1; l >= 0; l--) {
    const layer_params *p = &m->w.layers[l];
    const layer_params *gp = &m->gw.layers[l];
    const layer_acts la = layer_slot(m, l, B, T);
    const layer_attention at = layer_attention_of(m, l, B, T);
    /* the same ops on the same input (and the same keyed dropout masks): the activations the
     * forward pass computed, bit for bit; xout gets the values it holds already */
    if (m->recompute) GORP_CALL(model_layer_forward(m, l, &la, &at, m->step.dropout));
    if (m->grad_slot) GORP_CALL(zero_floats(m, m->grad_slot, m->n_grad_slot));
    const float *x = la.x, *xmid = la.xmid, *ln1 = la.ln1, *ln2 = la.ln2;
    const float *q = la.q, *k = la.k, *v = la.v, *atty = la.atty;
    const float *g = la.g, *u = la.u, *h = la.h;
    /* MLP: x_out = xmid + down(silu(gate(ln2)) * up(ln2)) */
    float *dh = a->dbuf;
    GORP_CALL(matmul_backward_set(dh, gp->wd, dx, h, lin(m, l, LORA_DOWN), N, F, C));
    GORP_CALL(lora_bwd(m, dh, dx, h, l, LORA_DOWN, N));
    GORP_CALL(m->ops->swiglu_backward(a->dg, a->du, dh, g, u, N * F));
    float *dln2 = a->dbuf2;
    GORP_CALL(matmul_backward_set(dln2, gp->wg, a->dg, ln2, lin(m, l, LORA_GATE), N, C, F));
    GORP_CALL(lora_bwd(m, dln2, a->dg, ln2, l, LORA_GATE, N));
    GORP_CALL(matmul_backward(dln2, gp->wu, a->du, ln2, lin(m, l, LORA_UP), N, C, F));
    GORP_CALL(lora_bwd(m, dln2, a->du, ln2, l, LORA_UP, N));
    GORP_CALL(column_parallel_input_grad(m, dln2, N, C));
    GORP_CALL(m->ops->rmsnorm_backward(dx, gp->ln2, dln2, xmid, p->ln2, la.rstd2, N, C));
    /* attention: xmid = x + o(attn(rope(q(ln1)), rope(k(ln1)), v(ln1))) */
    float *datty = a->dbuf;
    GORP_CALL(matmul_backward_set(datty, gp->wo, dx, atty, lin(m, l, LORA_O), N, QD, C));
    GORP_CALL(lora_bwd(m, datty, dx, atty, l, LORA_O, N));
    GORP_CALL(zero_floats(m, a->dk, (size_t)N * KD));
    GORP_CALL(zero_floats(m, a->dv, (size_t)N * KD));
    GORP_CALL(m->ops->attention_backward(a->dq, a->dk, a->dv, a->datt, a->n_datt, datty, at.att, q,
                                         k, v, B, T, H, KV, D));
    GORP_CALL(m->ops->rope_backward(a->dq, a->rope_cos, a->rope_sin, B, T, H, D));
    GORP_CALL(m->ops->rope_backward(a->dk, a->rope_cos, a->rope_sin, B, T, KV, D));
    float *dln1 = a->dbuf2;
    GORP_CALL(matmul_backward_set(dln1, gp->wq, a->dq, ln1, lin(m, l, LORA_Q), N, C, QD));
    GORP_CALL(lora_bwd(m, dln1, a->dq, ln1, l, LORA_Q, N));
    GORP_CALL(matmul_backward(dln1, gp->wk, a->dk, ln1, lin(m, l, LORA_K), N, C, KD));
    GORP_CALL(lora_bwd(m, dln1, a->dk, ln1, l, LORA_K, N));
    GORP_CALL(matmul_backward(dln1, gp->wv, a->dv, ln1, lin(m, l, LORA_V), N, C, KD));
    GORP_CALL(lora_bwd(m, dln1, a->dv, ln1, l, LORA_V, N));
    GORP_CALL(column_parallel_input_grad(m, dln1, N, C));
    GORP_CALL(m->ops->rmsnorm_backward(dx, gp->ln1, dln1, x, p->ln1, la.rstd1, N, C));
    if (m->grad_hook) GORP_CALL(m->grad_hook(m->grad_hook_ctx, m, l));
  }
  if (m->gw.embed) GORP_CALL(m->ops->embedding_backward(m->gw.embed, dx, a->ids, N, C));
  return GORP_OK;
}

const float *model_logits(const model *m) {
  return m->acts.logits;
}
