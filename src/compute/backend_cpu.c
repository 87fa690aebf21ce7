/* CPU backend: OpenBLAS SGEMM on the OpenMP threads, and the thread counts of both pools.
 * Not for: choosing the backend (the registry, backend.c) or any other backend. */
#include "backend_cpu.h"

#include "gorp/err.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>

static void cpu_gemm1(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                      int lda, const float *b, int ldb, float beta, float *c, int ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* Products below this many multiply-adds run on one thread: splitting costs more than it gains. */
static const double GEMM_SPLIT_MIN = 1 << 20;

/* C's rows (or columns, whichever are more) cut into one slab per thread of nt, each a
 * single-threaded OpenBLAS call. */
static void gemm_slabs(int nt, int trans_a, int trans_b, int m, int n, int k, float alpha,
                       const float *a, int lda, const float *b, int ldb, float beta, float *c,
                       int ldc) {
  const int split_m = m >= n, len = split_m ? m : n;
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), nth = omp_get_num_threads();
    /* slab edges on multiples of 16 rows/columns (the micro-kernels' widths) */
    const int units = (len + 15) / 16;
    int lo = (int)((long)units * t / nth) * 16, hi = (int)((long)units * (t + 1) / nth) * 16;
    hi = hi < len ? hi : len;
    if (lo < hi) {
      if (split_m) /* rows lo..hi of op(A) and C */
        cpu_gemm1(trans_a, trans_b, hi - lo, n, k, alpha, trans_a ? a + lo : a + (size_t)lo * lda,
                  lda, b, ldb, beta, c + (size_t)lo * ldc, ldc);
      else /* columns lo..hi of op(B) and C */
        cpu_gemm1(trans_a, trans_b, m, hi - lo, k, alpha, a, lda,
                  trans_b ? b + (size_t)lo * ldb : b + lo, ldb, beta, c + lo, ldc);
    }
  }
}

/* One product on the OpenMP threads: C's rows (or columns, whichever are more) are cut into one
 * slab per thread, each a single-threaded OpenBLAS call. Element-wise ops and GEMMs thus share
 * one pool of threads (OpenBLAS's own pool stays idle and never competes with OpenMP's), and
 * every element of C is computed by one thread over the whole k: deterministic. */
static int cpu_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                    int lda, const float *b, int ldb, float beta, float *c, int ldc) {
  const int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (nt == 1) {
    cpu_gemm1(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return GORP_OK; /* cblas_sgemm has no status to pass on */
  }
  /* a small product runs on this thread alone too: OpenBLAS's own threads would wake next to
   * OpenMP's spinning ones (measured: a LoRA run with many small products at half the speed of
   * one thread) */
  const int blas_threads = openblas_get_num_threads();
  if (blas_threads != 1) openblas_set_num_threads(1);
  if ((double)m * n * k < GEMM_SPLIT_MIN)
    cpu_gemm1(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else
    gemm_slabs(nt, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (blas_threads != 1) openblas_set_num_threads(blas_threads);
  return GORP_OK;
}

static int cpu_set_gemm_threads(int n) {
  const int prev = openblas_get_num_threads();
  if (n != prev) openblas_set_num_threads(n);
  return prev;
}

/* OpenBLAS (pthreads build) runs single-threaded calls from several threads at once. */
const backend_ops backend_cpu_ops = {"cpu", cpu_gemm, cpu_set_gemm_threads, 1};

void backend_threads_init(int ranks_per_node) {
  int n = openblas_get_num_threads();
  if (!getenv("OPENBLAS_NUM_THREADS") && !getenv("OMP_NUM_THREADS") && ranks_per_node > 1) {
    n = n / ranks_per_node > 1 ? n / ranks_per_node : 1;
    openblas_set_num_threads(n);
  }
  if (!getenv("OMP_NUM_THREADS")) omp_set_num_threads(n);
}

void backend_threads(int *openmp, int *openblas) {
  *openmp = omp_get_max_threads();
  *openblas = openblas_get_num_threads();
}
