/* CPU backend: the CBLAS SGEMM (OpenBLAS by default, any CBLAS otherwise) on the OpenMP threads,
 * and the thread counts of both pools.
 * Not for: the rest of the CPU table (backend_cpu_table.c), choosing the backend (the registry,
 * backend.c) or any other backend. */
#include "backend_cpu.h"

#include "gorp/err.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifdef GORP_HAVE_OPENBLAS /* CMake found openblas_set_num_threads in the BLAS it links */
/* OpenBLAS's own pool of threads (declared by its cblas.h) */
static int blas_threads(void) {
  return openblas_get_num_threads();
}
static void blas_set_threads(int n) {
  openblas_set_num_threads(n);
}
#else
/* Another BLAS (reference, MKL sequential, Cray LibSci): no pool of its own that gorp sets; each
 * call runs on the thread that makes it, so it counts as one. */
static int blas_threads(void) {
  return 1;
}
static void blas_set_threads(int n) {
  (void)n;
}
#endif

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
int backend_cpu_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                     int lda, const float *b, int ldb, float beta, float *c, int ldc) {
  const int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (nt == 1) {
    cpu_gemm1(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return GORP_OK; /* cblas_sgemm has no status to pass on */
  }
  /* a small product runs on this thread alone too: OpenBLAS's own threads would wake next to
   * OpenMP's spinning ones (measured: a LoRA run with many small products at half the speed of
   * one thread) */
  const int blas_prev = blas_threads();
  if (blas_prev != 1) blas_set_threads(1);
  if ((double)m * n * k < GEMM_SPLIT_MIN)
    cpu_gemm1(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else
    gemm_slabs(nt, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (blas_prev != 1) blas_set_threads(blas_prev);
  return GORP_OK;
}

int backend_cpu_set_gemm_threads(int n) {
  const int prev = blas_threads();
  if (n != prev) blas_set_threads(n);
  return prev;
}

/* OpenBLAS (pthreads build), like a BLAS without threads, runs single-threaded calls from several
 * threads at once. */
void backend_threads_init(int ranks_per_node) {
#ifdef GORP_HAVE_OPENBLAS
  int n = openblas_get_num_threads(); /* OPENBLAS_NUM_THREADS, else OMP_NUM_THREADS, else cores */
#else
  int n = omp_get_max_threads();
#endif
  if (!getenv("OPENBLAS_NUM_THREADS") && !getenv("OMP_NUM_THREADS") && ranks_per_node > 1) {
    n = n / ranks_per_node > 1 ? n / ranks_per_node : 1;
    blas_set_threads(n);
  }
  if (!getenv("OMP_NUM_THREADS")) omp_set_num_threads(n);
}

#if defined(GORP_HAVE_OPENBLAS) && defined(__x86_64__)
/* OpenBLAS cores whose kernels use the AVX2/FMA or AVX-512 units: anything else on a CPU that has
 * them is the library's fallback for a CPU newer than itself. */
static const char *const blas_vector_cores[] = {
    "Haswell",   "Zen",         "SkylakeX",   "Cooperlake", "SapphireRapids",
    "Excavator", "Steamroller", "Piledriver", "Bulldozer",
};

static const char *blas_better_core(const char *core) {
  for (size_t i = 0; i < sizeof(blas_vector_cores) / sizeof(blas_vector_cores[0]); i++)
    if (!strcasecmp(core, blas_vector_cores[i])) return NULL;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return NULL;
}
#endif

void backend_blas_core_init(char **argv) {
#if defined(GORP_HAVE_OPENBLAS) && defined(__x86_64__)
  if (getenv("OPENBLAS_CORETYPE")) return; /* the user's choice, or this process's second start */
  const char *core = openblas_get_corename();
  const char *better = core ? blas_better_core(core) : NULL;
  if (!better) return;
  setenv("OPENBLAS_CORETYPE", better, 1);
  execv("/proc/self/exe", argv);
  fprintf(stderr,
          "gorp: warning: OpenBLAS runs its generic '%s' kernels on this CPU, and restarting "
          "with OPENBLAS_CORETYPE=%s failed; set it yourself for %s's kernels\n",
          core, better, better);
#else
  (void)argv;
#endif
}

const char *backend_blas_core(void) {
#ifdef GORP_HAVE_OPENBLAS
  const char *core = openblas_get_corename();
  return core ? core : "unknown";
#else
  return "n/a";
#endif
}

void backend_threads(int *openmp, int *openblas) {
  *openmp = omp_get_max_threads();
  *openblas = blas_threads();
}
