/* The backend table: CPU GEMM against a naive triple loop for every transpose combination and
 * leading dimensions wider than the matrices; the CUDA backend (when built) against the CPU one,
 * or a clean refusal when no GPU is present (then the CUDA part is reported as skipped). */
#include "gorp/backend.h"
#include "gorp/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int n_pass, n_fail;

/* C (m, n) row-major with ldc, from op(A) op(B) in double. */
static void naive(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                  const float *b, int ldb, float beta, float *c, int ldc) {
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double s = 0.0;
      for (int p = 0; p < k; p++)
        s +=
            (double)(ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
      c[i * ldc + j] = (float)(alpha * s + beta * c[i * ldc + j]);
    }
}

/* Max abs difference between backend and naive results over all transpose cases. */
static double compare(const backend_ops *be) {
  enum { M = 7, N = 5, K = 9, LD = 12 };
  float a[LD * LD], b[LD * LD], c1[M * LD], c2[M * LD];
  for (int i = 0; i < LD * LD; i++) {
    a[i] = (float)rng_normal(1, 9, 1, i);
    b[i] = (float)rng_normal(1, 9, 2, i);
  }
  double worst = 0.0;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      for (int i = 0; i < M * LD; i++) c1[i] = c2[i] = (float)rng_normal(1, 9, 3, i);
      be->gemm(ta, tb, M, N, K, 0.7f, a, LD, b, LD, 0.3f, c1, LD);
      naive(ta, tb, M, N, K, 0.7f, a, LD, b, LD, 0.3f, c2, LD);
      for (int i = 0; i < M; i++)
        for (int j = 0; j < LD; j++) worst = fmax(worst, fabs(c1[i * LD + j] - c2[i * LD + j]));
    }
  return worst;
}

int main(void) {
  int skipped = 0;
  backend_select("cpu");
  double e = compare(backend_get());
  printf("%s cpu gemm, 4 transpose cases, ld > width: max error %.1e\n", e < 1e-5 ? "PASS" : "FAIL",
         e);
  e < 1e-5 ? n_pass++ : n_fail++;
  if (backend_select("cuda") == 0) {
    e = compare(backend_get());
    printf("%s cuda gemm matches the naive product: max error %.1e\n", e < 1e-4 ? "PASS" : "FAIL",
           e);
    e < 1e-4 ? n_pass++ : n_fail++;
  } else {
    printf("SKIP cuda backend: not built or no GPU (refused with the message above)\n");
    skipped = 1;
  }
  backend_select("cpu");
  if (backend_select("tpu") != 0) {
    printf("PASS an unknown backend name is refused\n");
    n_pass++;
  } else {
    n_fail++;
  }
  printf("%d passed, %d failed%s\n", n_pass, n_fail, skipped ? ", 1 skipped" : "");
  return n_fail != 0;
}
