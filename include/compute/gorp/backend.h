/* The only place that does matrix math and the home of a device-resident step's ops: a small ops
 * table filled by the CPU (OpenBLAS, the loops of kernels.h) or CUDA (cuBLAS and CUDA kernels)
 * backend, chosen at run time from the registry (backend.c, libCEED style). The model and
 * optimizers call backend_get()->gemm and never BLAS or CUDA directly, and check its status.
 * Every pointer an op takes lies in the backend's memory (alloc/upload/download; host memory for
 * the CPU backend, the GPU's for CUDA), except where a comment says host; CUDA's gemm also takes
 * host arrays and stages them (the host-resident model's products under run.backend = cuda).
 * Each op computes what the CPU op of the same name in kernels.h computes, to the tolerance the
 * conformance test (tests/unit/test_backend_ops.c) states for it; ops run in issue order, and
 * download waits for every op before it.
 * Not for: the host model's decompositions (linalg.h: randomized, left vectors, eigen); bf16
 * products of a host model (bf16.h). */
#ifndef GORP_BACKEND_H
#define GORP_BACKEND_H

#include "gorp/err.h"

#include <stddef.h>
#include <stdint.h>

/* AdamW's settings for one update (adamw_update, kernels.h); step counts from 1. */
typedef struct adamw_hyper {
  float lr, beta1, beta2, eps, weight_decay;
  long step;
} adamw_hyper;

typedef struct backend_ops {
  const char *name;
  /* Row-major C (m x n) = alpha * op(A) op(B) + beta * C, op(X) = X or X^T per trans flag.
   * Returns GORP_OK, or a GORP_E* code after reporting which library call failed (CUDA); the
   * attribute makes an unchecked status a build error (-Werror=unused-result). */
  int (*gemm)(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
              const float *b, int ldb, float beta, float *c, int ldc) GORP_WUR;
  /* Sets how many threads one gemm call may use from now on (n >= 1) and returns the previous
   * count; NULL when the backend has no such knob. */
  int (*set_gemm_threads)(int n);
  /* 1: gemm may be called from several threads at once (each call then on its own data). */
  int concurrent;

  /* memory of the backend: bytes allocated and zeroed (*p NULL on failure, reported; calloc's
   * contract, so that a host table maps untouched pages lazily), freed (NULL is a no-op), copied
   * from (upload) and to (download) host memory, copied within it (copy; the arrays must not
   * overlap), set to zero bytes */
  int (*alloc)(void **p, size_t bytes) GORP_WUR;
  void (*free)(void *p);
  int (*upload)(void *dst, const void *host_src, size_t bytes) GORP_WUR;
  int (*download)(void *host_dst, const void *src, size_t bytes) GORP_WUR;
  int (*copy)(void *dst, const void *src, size_t bytes) GORP_WUR;
  int (*zero)(void *p, size_t bytes) GORP_WUR;

  /* gemm with A and B in bfloat16 (kernels.h's bf16 values), fp32 sums and fp32 C */
  int (*gemm_bf16)(int trans_a, int trans_b, int m, int n, int k, float alpha, const uint16_t *a,
                   int lda, const uint16_t *b, int ldb, float beta, float *c, int ldc) GORP_WUR;

  /* out (n) = in (n) rounded to bf16 as bf16.h's bf16_from_f32 rounds (to nearest, ties to even,
   * a NaN kept): the activations' side of a product with a bf16 weight (gemm_bf16) */
  int (*bf16_round)(uint16_t *out, const float *in, size_t n) GORP_WUR;

  /* the step's element-wise ops, each as kernels.h's function of the same name */
  int (*embedding_forward)(float *out, const int *tokens, const float *emb, int N, int C) GORP_WUR;
  /* embedding_forward of bf16 rows (emb (V, C) bf16), widened */
  int (*embedding_forward_bf16)(float *out, const int *tokens, const uint16_t *emb, int N,
                                int C) GORP_WUR;
  int (*embedding_backward)(float *demb, const float *dout, const int *tokens, int N,
                            int C) GORP_WUR;
  int (*rmsnorm_forward)(float *out, float *rstd, const float *inp, const float *w, int N, int C,
                         float eps) GORP_WUR;
  int (*rmsnorm_backward)(float *dinp, float *dw, const float *dout, const float *inp,
                          const float *w, const float *rstd, int N, int C) GORP_WUR;
  int (*rope_forward)(float *x, const float *cos_t, const float *sin_t, int B, int T, int NH,
                      int D) GORP_WUR;
  int (*rope_backward)(float *dx, const float *cos_t, const float *sin_t, int B, int T, int NH,
                       int D) GORP_WUR;
  int (*attention_forward)(float *out, float *att, const float *q, const float *k, const float *v,
                           int B, int T, int H, int KV, int D) GORP_WUR;
  /* scratch (n_scratch, T, T) as kernels.h's attention_backward needs it (CUDA needs none and
   * ignores it) */
  int (*attention_backward)(float *dq, float *dk, float *dv, float *scratch, int n_scratch,
                            const float *dout, const float *att, const float *q, const float *k,
                            const float *v, int B, int T, int H, int KV, int D) GORP_WUR;
  /* seq, pos (N) in the backend's memory too; scratch (n_scratch, H/KV, S) as kernels.h's
   * attention_decode needs it (CUDA needs none and ignores it) */
  int (*attention_decode)(float *out, const float *q, const float *kc, const float *vc,
                          const int *seq, const int *pos, float *scratch, int n_scratch, int N,
                          int S, int H, int KV, int D) GORP_WUR;
  int (*swiglu_forward)(float *h, const float *g, const float *u, int N) GORP_WUR;
  int (*swiglu_backward)(float *dg, float *du, const float *dh, const float *g, const float *u,
                         int N) GORP_WUR;
  /* *loss (host): the weighted summed loss; *n_targets (host): the rows with a target */
  int (*crossentropy_forward)(double *loss, int *n_targets, const float *logits, const int *targets,
                              const float *weights, int N, int V) GORP_WUR;
  int (*crossentropy_backward)(float *logits, const int *targets, const float *weights, int N,
                               int V, float div) GORP_WUR;
  /* row_keys (N) in the backend's memory too */
  int (*dropout_rows)(float *y, const float *x, const uint64_t *row_keys, int N, int in, int first,
                      float p, int add) GORP_WUR;
  /* rows (R) in the backend's memory too */
  int (*rows_gather)(float *out, const float *in, const int *rows, int R, int C) GORP_WUR;
  int (*rows_scatter)(float *out, const float *in, const int *rows, int R, int C) GORP_WUR;
  /* Q (k, n): the top-k right singular vectors of G (m, n), one per row, each signed so that its
   * first largest-magnitude entry is positive (linalg.h's convention); sv (k): their singular
   * values, descending. Exact; G is not modified; 1 <= k <= min(m, n). */
  int (*svd_topk_right)(float *Q, float *sv, const float *G, int m, int n, int k) GORP_WUR;
  int (*adamw_update)(float *params, float *m, float *v, const float *grads, size_t n,
                      adamw_hyper h) GORP_WUR;
} backend_ops;

/* Selects a backend of the registry ("cpu" or "cuda") for this process; an unknown name, and
 * "cuda" without the module or a GPU, fail with a clear message and keep the current one. */
int backend_select(const char *name);
const backend_ops *backend_get(void);
/* The CPU's table whatever backend is selected: the ops of data in host memory (the model's
 * element-wise ops while it lives in host memory, model.h). */
const backend_ops *backend_host(void);
/* OpenBLAS (Debian 12's 0.3.21, DYNAMIC_ARCH) picks its kernels in its constructor, before main,
 * from the CPU's family and model; on a CPU newer than the library it falls back to the generic
 * SSE3 "Prescott" ones (measured on an Emerald Rapids VM, family 6 model 207: SGEMM 31 GFLOP/s on
 * one thread against 157 with the SkylakeX kernels). Called first in main: when OPENBLAS_CORETYPE
 * is unset and OpenBLAS chose a core without the AVX2/FMA or AVX-512 units the CPU has, it sets
 * OPENBLAS_CORETYPE to the kernels of those units (Haswell, SkylakeX) and executes the program
 * again (same process, before MPI_Init); otherwise, and with another BLAS, it returns. */
void backend_blas_core_init(char **argv);
/* The kernels OpenBLAS runs ("SkylakeX"), "n/a" with another BLAS: for the run's first line. */
const char *backend_blas_core(void);
/* Makes OpenMP (element-wise ops, attention) use as many threads as the GEMMs (OpenBLAS:
 * OPENBLAS_NUM_THREADS) unless OMP_NUM_THREADS says otherwise; called once at start-up. When
 * neither variable is set, the cores are shared among the ranks_per_node MPI ranks of this node
 * (OpenBLAS would otherwise give every rank every core). */
void backend_threads_init(int ranks_per_node);
/* The threads this process computes with: OpenMP's (GEMM slabs, attention, element-wise ops)
 * and OpenBLAS's own (LAPACK). Some sums are split by thread, so a run is bit-identical to
 * another only with the same two counts (checkpoints record them, docs/CHECKPOINT.md). */
void backend_threads(int *openmp, int *openblas);

#endif
