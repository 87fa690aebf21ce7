/* The CUDA module's ops beyond backend_cuda.c's own: the host launchers of its kernels
 * (kernels.cu) and its SVD (svd_cuda.c), each with the signature of the backend.h ops-table entry
 * it fills (backend_cuda.c), and the check of a CUDA runtime call that these files use. C
 * linkage, so that the C files call them and kernels.cu calls err.c's reporting functions.
 * Not for: the matrix products (cuBLAS, backend_cuda.c). */
#ifndef GORP_KERNELS_CUDA_H
#define GORP_KERNELS_CUDA_H

/* C++'s own wrappers of the C headers, before the extern "C" block below */
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "gorp/backend.h"
#include "gorp/err.h"

/* A CUDA runtime call that does not return cudaSuccess is an error naming the call. */
#define CUDA_CALL(call)                                                                            \
  do {                                                                                             \
    cudaError_t gorp_cuerr_ = (call);                                                              \
    if (gorp_cuerr_ != cudaSuccess)                                                                \
      GORP_ERR(GORP_ELIB, "CUDA call failed (%s): %s", cudaGetErrorString(gorp_cuerr_), #call);    \
  } while (0)

/* The element-wise ops of backend.h, on pointers in device memory (loss and n_targets: host). */
int cuda_embedding_forward(float *out, const int *tokens, const float *emb, int N, int C) GORP_WUR;
int cuda_embedding_forward_bf16(float *out, const int *tokens, const uint16_t *emb, int N,
                                int C) GORP_WUR;
int cuda_bf16_round(uint16_t *out, const float *in, size_t n) GORP_WUR;
int cuda_embedding_backward(float *demb, const float *dout, const int *tokens, int N,
                            int C) GORP_WUR;
int cuda_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int C,
                         float eps) GORP_WUR;
int cuda_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp,
                          const float *w, const float *rstd, int N, int C) GORP_WUR;
int cuda_rope_forward(float *x, const float *cos_t, const float *sin_t, int B, int T, int NH,
                      int D) GORP_WUR;
int cuda_rope_backward(float *dx, const float *cos_t, const float *sin_t, int B, int T, int NH,
                       int D) GORP_WUR;
int cuda_attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                           int B, int T, int H, int KV, int D) GORP_WUR;
/* scratch and n_scratch ignored: the scores live in shared memory (S + D floats per block) */
int cuda_attention_decode(float *out, const float *q, const float *kc, const float *vc,
                          const int *seq, const int *pos, float *scratch, int n_scratch, int N,
                          int S, int H, int KV, int D) GORP_WUR;
int cuda_attention_backward(float *dq, float *dk, float *dv, float *scratch, int n_scratch,
                            const float *dout, const float *att, const float *q, const float *k,
                            const float *v, int B, int T, int H, int KV, int D) GORP_WUR;
int cuda_swiglu_forward(float *h, const float *g, const float *u, int N) GORP_WUR;
int cuda_swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u,
                         int N) GORP_WUR;
int cuda_crossentropy_forward(double *loss, int *n_targets, const float *logits, const int *targets,
                              const float *weights, int N, int V) GORP_WUR;
int cuda_crossentropy_backward(float *logits, const int *targets, const float *weights, int N,
                               int V, float div) GORP_WUR;
int cuda_dropout_rows(float *y, const float *x, const uint64_t *row_keys, int N, int in, int first,
                      float p, int add) GORP_WUR;
/* linalg_sign_fix on each row of Q (k, n): negated when its first largest-magnitude entry is
 * negative (cuda_svd_topk_right's vectors) */
int cuda_sign_fix_rows(float *Q, int k, int n) GORP_WUR;
/* backend.h's svd_topk_right through cuSOLVER (svd_cuda.c) */
int cuda_svd_topk_right(float *Q, float *sv, const float *G, int m, int n, int k) GORP_WUR;
int cuda_rows_gather(float *out, const float *in, const int *rows, int R, int C) GORP_WUR;
int cuda_rows_scatter(float *out, const float *in, const int *rows, int R, int C) GORP_WUR;
int cuda_adamw_update(float *params, float *m, float *v, const float *grads, size_t n,
                      adamw_hyper h) GORP_WUR;

/* The ops-table entries these kernels fill, for a designated initializer: backend_cuda.c's table
 * and the CPU emulator's (tests/cuda_emu) wire each op to the same launcher. */
#define CUDA_KERNEL_OPS                                                                            \
  .embedding_forward = cuda_embedding_forward, .embedding_backward = cuda_embedding_backward,      \
  .embedding_forward_bf16 = cuda_embedding_forward_bf16, .bf16_round = cuda_bf16_round,            \
  .rmsnorm_forward = cuda_rmsnorm_forward, .rmsnorm_backward = cuda_rmsnorm_backward,              \
  .rope_forward = cuda_rope_forward, .rope_backward = cuda_rope_backward,                          \
  .attention_forward = cuda_attention_forward, .attention_backward = cuda_attention_backward,      \
  .attention_decode = cuda_attention_decode, .swiglu_forward = cuda_swiglu_forward,                \
  .swiglu_backward = cuda_swiglu_backward, .crossentropy_forward = cuda_crossentropy_forward,      \
  .crossentropy_backward = cuda_crossentropy_backward, .dropout_rows = cuda_dropout_rows,          \
  .rows_gather = cuda_rows_gather, .rows_scatter = cuda_rows_scatter,                              \
  .adamw_update = cuda_adamw_update

#ifdef __cplusplus
}
#endif

#endif
