/* The CPU kernels of a LLaMA training step that are not a weight's product (llm.c style: outputs
 * first, shapes in comments, one forward/backward pair each; backward accumulates (+=) into
 * parameter gradients and, where noted, into input gradients), and AdamW's update. They are the
 * CPU backend's element-wise ops (backend.h), the reference every other backend's ops are
 * checked against (tests/unit/test_backend_ops.c), and what the host-resident model calls
 * (through ops.h). Single rank; activations and gradients fp32.
 * Not for: the weights' products (ops.h: matmul_*), orchestration (model.c). */
#ifndef GORP_KERNELS_H
#define GORP_KERNELS_H

#include "gorp/backend.h"
#include "gorp/bf16.h"

#include <stddef.h>

/* Element-wise work of fewer floats than this runs on the calling thread alone (kernels.c). */
enum { OPS_PARALLEL_MIN = 1 << 16 };

/* A weight matrix (OC, C) row-major as an op reads it: fp32 (f), or bf16 (h, a frozen weight:
 * its products round the other operand to bf16 and accumulate in fp32 through cache, bf16.h, or
 * in another table's memory through dev). Exactly one of f and h is set. An fp32 weight with
 * cache set is a trained one under model.trained_products = bf16: its forward, input-gradient
 * and weight-gradient products round both operands to bf16 and sum in fp32 (bf16_gemm_ff). */
typedef struct op_weight {
  const float *f;         /* (OC, C) fp32, or NULL */
  const bf16 *h;          /* (OC, C) bf16 when f is NULL */
  bf16_gemm_cache *cache; /* the bf16 products' primitives (host memory): with h, or with f */
  /* a bf16 weight in the memory of table dev (instead of cache): the other operand is rounded
   * by dev->bf16_round into scratch (scratch_n values, dev's memory), then dev->gemm_bf16 */
  const backend_ops *dev;
  bf16 *scratch;
  size_t scratch_n;
} op_weight;

/* An fp32 weight. */
static inline op_weight op_w32(const float *w) {
  return (op_weight){.f = w, .h = NULL, .cache = NULL};
}

/* out (N, C) = emb[tokens] ; emb (V, C), bf16 rows widened */
void embedding_forward(float *out, const int *tokens, op_weight emb, int N, int C);
/* demb (V, C) += scatter of dout (N, C) */
void embedding_backward(float *demb, const float *dout, const int *tokens, int N, int C);

/* out (N, C) = w * inp / sqrt(mean(inp^2) + eps) ; rstd (N) saved for backward */
void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int C,
                     float eps);
/* dinp (N, C) += ; dw (C) += (dw may be NULL) */
void rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                      const float *rstd, int N, int C);

/* cos, sin (T, D/2) for positions pos0..pos0+T-1, computed in float32 like HF's rotary embedding */
void rope_tables(float *cos_t, float *sin_t, int pos0, int T, int D, float theta);
/* x (B, T, NH*D) rotated in place (rotate-half convention) */
void rope_forward(float *x, const float *cos_t, const float *sin_t, int B, int T, int NH, int D);
/* dx (B, T, NH*D): gradient w.r.t. the rotated x, turned in place into the gradient w.r.t. x */
void rope_backward(float *dx, const float *cos_t, const float *sin_t, int B, int T, int NH, int D);

/* Causal grouped-query attention, the (batch, kv head) pairs split over OpenMP threads.
 * out (B, T, H*D), att (B, H, T, T) probabilities (0 above the diagonal), q (B, T, H*D),
 * k, v (B, T, KV*D) */
GORP_WUR int attention_forward(float *out, float *att, const float *q, const float *k,
                               const float *v, int B, int T, int H, int KV, int D);
/* The same attention for one new query position per sequence against its key/value cache
 * (greedy decoding), with the same softmax. Row i is position pos[i] of sequence seq[i] and
 * attends over that sequence's positions 0..pos[i] (its own key and value already stored at
 * pos[i]). out, q (N, H*D) after RoPE; kc, vc (n_seq, S, KV*D) the caches of every sequence;
 * scratch (n_scratch, H/KV, S): one per thread, so at most n_scratch threads work */
GORP_WUR int attention_decode(float *out, const float *q, const float *kc, const float *vc,
                              const int *seq, const int *pos, float *scratch, int n_scratch, int N,
                              int S, int H, int KV, int D);
/* dq (B, T, H*D) overwritten; dk, dv (B, T, KV*D) accumulated (zero them first);
 * scratch (n_scratch, T, T): one (T, T) per thread, so at most n_scratch threads work */
GORP_WUR int attention_backward(float *dq, float *dk, float *dv, float *scratch, int n_scratch,
                                const float *dout, const float *att, const float *q, const float *k,
                                const float *v, int B, int T, int H, int KV, int D);

/* h (N) = silu(g) * u */
void swiglu_forward(float *h, const float *g, const float *u, int N);
/* dg, du (N) overwritten */
void swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, int N);

/* Cross-entropy over logits (N, V) against targets (N) (-1 = ignored), each position weighted by
 * weights (N) (NULL: 1). Returns the weighted summed loss (double); counts targets. */
double crossentropy_forward(int *n_targets, const float *logits, const int *targets,
                            const float *weights, int N, int V);
/* logits (N, V) overwritten with d(weighted sum / div)/d(logits); ignored rows become 0 */
void crossentropy_backward(float *logits, const int *targets, const float *weights, int N, int V,
                           float div);

/* Inverted dropout of rows: y (N, in) = x (N, in) * mask (add: y += x * mask). Row n's mask is a
 * pure function of row_keys[n] (N) and each feature's logical index g = first + i (a TP shard
 * draws its block of the whole row's mask): one draw rng_bits_keyed(row_keys[n], g / 4) gives
 * four 16-bit uniforms, feature g takes number g % 4; it is dropped (factor 0) when that is below
 * round(p * 65536), else scaled by 1 / (1 - p). The backward is the same call on the gradient. */
void dropout_rows(float *y, const float *x, const uint64_t *row_keys, int N, int in, int first,
                  float p, int add);

/* out (R, C) = the rows rows[0..R-1] of in (N, C); out and in do not overlap (the head's rows of
 * the final norm, model.c). */
void rows_gather(float *out, const float *in, const int *rows, int R, int C);
/* out (N, C) rows rows[r] = in (R, C) row r, the other rows of out kept; the rows are distinct
 * (the head's gradient scattered back into (B, T)). */
void rows_scatter(float *out, const float *in, const int *rows, int R, int C);

/* One AdamW update of params (n) with moments m, v (n) from grads (n), torch.optim.AdamW's
 * formulas and order; h.step is the step being taken (1 for the first). */
void adamw_update(float *params, float *m, float *v, const float *grads, size_t n, adamw_hyper h);

#endif
