/* The only place that does matrix math: a small ops table filled by the CPU (OpenBLAS) or CUDA
 * (cuBLAS) backend, chosen at run time from the registry (backend.c, libCEED style). The model and
 * optimizers call backend_get()->gemm and never BLAS or CUDA directly, and check its status.
 * Not for: element-wise ops (plain loops in the model), decompositions (linalg.h). */
#ifndef GORP_BACKEND_H
#define GORP_BACKEND_H

typedef struct backend_ops {
  const char *name;
  /* Row-major C (m x n) = alpha * op(A) op(B) + beta * C, op(X) = X or X^T per trans flag.
   * Returns GORP_OK, or a GORP_E* code after reporting which library call failed (CUDA); the
   * attribute makes an unchecked status a build error (-Werror=unused-result). */
  int (*gemm)(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
              const float *b, int ldb, float beta, float *c, int ldc)
      __attribute__((warn_unused_result));
  /* Sets how many threads one gemm call may use from now on (n >= 1) and returns the previous
   * count; NULL when the backend has no such knob. */
  int (*set_gemm_threads)(int n);
  /* 1: gemm may be called from several threads at once (each call then on its own data). */
  int concurrent;
} backend_ops;

/* Selects a backend of the registry ("cpu" or "cuda") for this process; an unknown name, and
 * "cuda" without the module or a GPU, fail with a clear message and keep the current one. */
int backend_select(const char *name);
const backend_ops *backend_get(void);
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
