/* The CPU backend's ops table: backend_cpu.c's SGEMM, host memory, and kernels.h's loops behind
 * the table's status-returning signatures (a CPU op cannot fail once its memory exists). This is
 * the reference the conformance test holds every other backend to.
 * Not for: the host-resident model, which calls kernels.h and ops.h directly. */
#include "backend_cpu.h"

#include "gorp/bf16.h"
#include "gorp/err.h"
#include "gorp/kernels.h"
#include "gorp/linalg.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

static int cpu_alloc(void **p, size_t bytes) {
  *p = calloc(bytes ? bytes : 1, 1);
  if (!*p) GORP_ERR(GORP_EMEM, "backend 'cpu': out of memory for %zu bytes", bytes);
  return GORP_OK;
}

static void cpu_free(void *p) {
  free(p);
}

/* Copies and zeroing of a model's arrays (activations of a batch, a layer's gradients: tens of
 * MB) split over the OpenMP threads, one contiguous part each; small ones on the calling thread. */
#define CPU_MEM_PARALLEL_MIN (OPS_PARALLEL_MIN * sizeof(float))

/* dst = src (bytes), or dst = 0 when src is NULL: one contiguous part per thread */
static void cpu_fill(void *dst, const void *src, size_t bytes) {
#pragma omp parallel if (bytes >= CPU_MEM_PARALLEL_MIN)
  {
    const size_t nt = (size_t)omp_get_num_threads(), t = (size_t)omp_get_thread_num(),
                 lo = bytes * t / nt, hi = bytes * (t + 1) / nt;
    if (hi > lo && src) memcpy((char *)dst + lo, (const char *)src + lo, hi - lo);
    if (hi > lo && !src) memset((char *)dst + lo, 0, hi - lo);
  }
}

static int cpu_copy(void *dst, const void *src, size_t bytes) {
  cpu_fill(dst, src, bytes);
  return GORP_OK;
}

static int cpu_zero(void *p, size_t bytes) {
  cpu_fill(p, NULL, bytes);
  return GORP_OK;
}

/* Both operands widened to fp32 (exact) into one scratch, then the SGEMM: fp32 sums as the
 * table asks. The host model's bf16 products use bf16.h (oneDNN) instead; this is the reference. */
static int cpu_gemm_bf16(int trans_a, int trans_b, int m, int n, int k, float alpha,
                         const uint16_t *a, int lda, const uint16_t *b, int ldb, float beta,
                         float *c, int ldc) {
  GORP_CHECK(m >= 0 && n >= 0 && k >= 0, GORP_EINPUT, "gemm_bf16: bad shape m=%d n=%d k=%d", m, n,
             k);
  const size_t na = m && k ? (size_t)((trans_a ? k : m) - 1) * lda + (trans_a ? m : k) : 0,
               nb = n && k ? (size_t)((trans_b ? n : k) - 1) * ldb + (trans_b ? k : n) : 0;
  float *wide;
  GORP_ALLOC(wide, na + nb + 1, "gemm_bf16's widened operands");
  bf16_widen(wide, a, na);
  bf16_widen(wide + na, b, nb);
  const int rc =
      backend_cpu_gemm(trans_a, trans_b, m, n, k, alpha, wide, lda, wide + na, ldb, beta, c, ldc);
  free(wide);
  return rc;
}

static int cpu_embedding_forward(float *out, const int *tokens, const float *emb, int N, int C) {
  embedding_forward(out, tokens, op_w32(emb), N, C);
  return GORP_OK;
}

static int cpu_embedding_forward_bf16(float *out, const int *tokens, const uint16_t *emb, int N,
                                      int C) {
  embedding_forward(out, tokens, (op_weight){.h = emb}, N, C);
  return GORP_OK;
}

static int cpu_bf16_round(uint16_t *out, const float *in, size_t n) {
  bf16_round(out, in, n);
  return GORP_OK;
}

static int cpu_embedding_backward(float *demb, const float *dout, const int *tokens, int N, int C) {
  embedding_backward(demb, dout, tokens, N, C);
  return GORP_OK;
}

static int cpu_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N,
                               int C, float eps) {
  rmsnorm_forward(out, rstd, inp, w, N, C, eps);
  return GORP_OK;
}

static int cpu_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp,
                                const float *w, const float *rstd, int N, int C) {
  rmsnorm_backward(dinp, dw, dout, inp, w, rstd, N, C);
  return GORP_OK;
}

static int cpu_rope_forward(float *x, const float *cos_t, const float *sin_t, int B, int T, int NH,
                            int D) {
  rope_forward(x, cos_t, sin_t, B, T, NH, D);
  return GORP_OK;
}

static int cpu_rope_backward(float *dx, const float *cos_t, const float *sin_t, int B, int T,
                             int NH, int D) {
  rope_backward(dx, cos_t, sin_t, B, T, NH, D);
  return GORP_OK;
}

static int cpu_swiglu_forward(float *h, const float *g, const float *u, int N) {
  swiglu_forward(h, g, u, N);
  return GORP_OK;
}

static int cpu_swiglu_backward(float *dg, float *du, const float *dh, const float *g,
                               const float *u, int N) {
  swiglu_backward(dg, du, dh, g, u, N);
  return GORP_OK;
}

static int cpu_crossentropy_forward(double *loss, int *n_targets, const float *logits,
                                    const int *targets, const float *weights, int N, int V) {
  *loss = crossentropy_forward(n_targets, logits, targets, weights, N, V);
  return GORP_OK;
}

static int cpu_crossentropy_backward(float *logits, const int *targets, const float *weights, int N,
                                     int V, float div) {
  crossentropy_backward(logits, targets, weights, N, V, div);
  return GORP_OK;
}

static int cpu_dropout_rows(float *y, const float *x, const uint64_t *row_keys, int N, int in,
                            int first, float p, int add) {
  dropout_rows(y, x, row_keys, N, in, first, p, add);
  return GORP_OK;
}

/* linalg's exact SVD with a workspace of its own per call (the reference; the host model keeps
 * one workspace per caller, linalg.h) */
static int cpu_svd_topk_right(float *Q, float *sv, const float *G, int m, int n, int k) {
  linalg_ws ws = {0};
  int rc = linalg_ws_reserve(&ws, m, n, k, NULL);
  if (!rc) rc = linalg_topk_right(Q, sv, G, m, n, k, SVD_EXACT, NULL, &ws);
  linalg_ws_free(&ws);
  return rc;
}

static int cpu_rows_gather(float *out, const float *in, const int *rows, int R, int C) {
  rows_gather(out, in, rows, R, C);
  return GORP_OK;
}

static int cpu_rows_scatter(float *out, const float *in, const int *rows, int R, int C) {
  rows_scatter(out, in, rows, R, C);
  return GORP_OK;
}

static int cpu_adamw_update(float *params, float *m, float *v, const float *grads, size_t n,
                            adamw_hyper h) {
  adamw_update(params, m, v, grads, n, h);
  return GORP_OK;
}

const backend_ops backend_cpu_ops = {
    .name = "cpu",
    .gemm = backend_cpu_gemm,
    .set_gemm_threads = backend_cpu_set_gemm_threads,
    .concurrent = 1,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .zero = cpu_zero,
    .gemm_bf16 = cpu_gemm_bf16,
    .bf16_round = cpu_bf16_round,
    .embedding_forward = cpu_embedding_forward,
    .embedding_forward_bf16 = cpu_embedding_forward_bf16,
    .embedding_backward = cpu_embedding_backward,
    .rmsnorm_forward = cpu_rmsnorm_forward,
    .rmsnorm_backward = cpu_rmsnorm_backward,
    .rope_forward = cpu_rope_forward,
    .rope_backward = cpu_rope_backward,
    .attention_forward = attention_forward,
    .attention_backward = attention_backward,
    .attention_decode = attention_decode,
    .swiglu_forward = cpu_swiglu_forward,
    .swiglu_backward = cpu_swiglu_backward,
    .crossentropy_forward = cpu_crossentropy_forward,
    .crossentropy_backward = cpu_crossentropy_backward,
    .dropout_rows = cpu_dropout_rows,
    .svd_topk_right = cpu_svd_topk_right,
    .rows_gather = cpu_rows_gather,
    .rows_scatter = cpu_rows_scatter,
    .adamw_update = cpu_adamw_update,
};
