/* CPU backend: OpenBLAS. Also holds the run-time selection of the backend table. */
#include "gorp/backend.h"
#include "gorp/err.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static void cpu_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                     int lda, const float *b, int ldb, float beta, float *c, int ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static int cpu_set_gemm_threads(int n) {
  const int prev = openblas_get_num_threads();
  if (n != prev) openblas_set_num_threads(n);
  return prev;
}

/* OpenBLAS (pthreads build) runs single-threaded calls from several threads at once. */
static const backend_ops cpu_ops = {"cpu", cpu_gemm, cpu_set_gemm_threads, 1};
static const backend_ops *current = &cpu_ops;

#ifdef GORP_HAVE_CUDA
int backend_cuda_ops(const backend_ops **ops); /* backend_cuda.c */
#endif

int backend_select(const char *name) {
  if (!strcmp(name, "cpu")) {
    current = &cpu_ops;
    return GORP_OK;
  }
  if (!strcmp(name, "cuda")) {
#ifdef GORP_HAVE_CUDA
    GORP_CALL(backend_cuda_ops(&current));
    return GORP_OK;
#else
    GORP_ERR(GORP_EINPUT, "backend 'cuda' requested but this gorp was built without CUDA");
#endif
  }
  GORP_ERR(GORP_EINPUT, "unknown backend '%s' (expected cpu or cuda)", name);
}

const backend_ops *backend_get(void) {
  return current;
}

void backend_threads_init(void) {
  if (!getenv("OMP_NUM_THREADS")) omp_set_num_threads(openblas_get_num_threads());
}
