/* The machine's ceiling for bench/: OpenBLAS SGEMM C = A B (row-major, n x n, fp32) timed on the
 * system OpenBLAS that gorp links, with the kernels gorp runs (backend_blas_core_init) and an
 * explicit thread count. A CMake target beside gorp:
 *   build/bench_sgemm N THREADS REPS
 * prints one line: sgemm n=N threads=T reps=R best_gflops=.. mean_gflops=.. kernels=..
 * (one untimed call first; GFLOP/s = 2 n^3 / seconds / 1e9, wall clock, CLOCK_MONOTONIC).
 * Not for: correctness checks of BLAS, or anything gorp itself runs. bench/bench_train.py runs it.
 */
#include "gorp/backend.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void openblas_set_num_threads(int num_threads); /* in cblas.h of OpenBLAS, not of other BLAS */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int main(int argc, char **argv) {
  backend_blas_core_init(argv); /* gorp's own BLAS kernels (backend.h) */
  if (argc != 4) {
    fprintf(stderr, "usage: %s N THREADS REPS\n", argv[0]);
    return 64;
  }
  const int n = atoi(argv[1]), threads = atoi(argv[2]), reps = atoi(argv[3]);
  if (n < 1 || threads < 1 || reps < 1) {
    fprintf(stderr, "%s: N, THREADS and REPS must be >= 1\n", argv[0]);
    return 64;
  }
  openblas_set_num_threads(threads);
  const size_t nn = (size_t)n * n;
  float *a = aligned_alloc(64, nn * sizeof(float)), *b = aligned_alloc(64, nn * sizeof(float)),
        *c = aligned_alloc(64, nn * sizeof(float));
  if (!a || !b || !c) {
    fprintf(stderr, "%s: out of memory for three %d x %d matrices\n", argv[0], n, n);
    return 4;
  }
  unsigned s = 12345u;
  for (size_t i = 0; i < nn; i++) {
    s = s * 1664525u + 1013904223u;
    a[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
    s = s * 1664525u + 1013904223u;
    b[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
    c[i] = 0.0f;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
  double best = 1e30, total = 0.0;
  for (int r = 0; r < reps; r++) {
    const double t0 = now_s();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    const double dt = now_s() - t0;
    total += dt;
    if (dt < best) best = dt;
  }
  const double flop = 2.0 * n * (double)n * n;
  printf("sgemm n=%d threads=%d reps=%d best_gflops=%.2f mean_gflops=%.2f check=%.4g kernels=%s\n",
         n, threads, reps, flop / best / 1e9, flop / (total / reps) / 1e9, (double)c[nn / 2],
         backend_blas_core());
  free(a);
  free(b);
  free(c);
  return 0;
}
