/* The backend registry and tables: CPU GEMM against a naive triple loop for every transpose
 * combination and leading dimensions wider than the matrices, each call's status GORP_OK; the
 * registry refusing an unknown name with a message naming it and keeping the current backend; the
 * CUDA backend (when built) against the naive product, or a clean refusal naming the backend when
 * it is not built or no GPU is present (then the CUDA part is reported as skipped). */
#include "gorp/backend.h"
#include "gorp/err.h"
#include "gorp/rng.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Max abs difference between backend and naive results over all transpose cases; *rc the first
 * non-OK status of the backend's gemm. */
static double compare(const backend_ops *be, int *rc) {
  enum { M = 7, N = 5, K = 9, LD = 12 };
  float a[LD * LD], b[LD * LD], c1[M * LD], c2[M * LD];
  for (int i = 0; i < LD * LD; i++) {
    a[i] = (float)rng_normal(1, 9, 1, i);
    b[i] = (float)rng_normal(1, 9, 2, i);
  }
  double worst = 0.0;
  *rc = GORP_OK;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      for (int i = 0; i < M * LD; i++) c1[i] = c2[i] = (float)rng_normal(1, 9, 3, i);
      const int st = be->gemm(ta, tb, M, N, K, 0.7f, a, LD, b, LD, 0.3f, c1, LD);
      if (!*rc) *rc = st;
      naive(ta, tb, M, N, K, 0.7f, a, LD, b, LD, 0.3f, c2, LD);
      for (int i = 0; i < M; i++)
        for (int j = 0; j < LD; j++) worst = fmax(worst, fabs(c1[i * LD + j] - c2[i * LD + j]));
    }
  return worst;
}

/* backend_select(name) with its stderr in *msg (malloc'd). */
static int select_quietly(const char *name, char **msg) {
  capture_begin();
  const int rc = backend_select(name);
  *msg = capture_end();
  return rc;
}

int main(void) {
  char *msg;
  int rc = select_quietly("cpu", &msg);
  CHECK(rc == GORP_OK && !strcmp(backend_get()->name, "cpu"), "select cpu: %d, %s", rc, msg);
  free(msg);
  double e = compare(backend_get(), &rc);
  CHECK(e < 1e-5 && rc == GORP_OK,
        "cpu gemm, 4 transpose cases, ld > width: max error %.1e, "
        "status %d",
        e, rc);
  printf("cpu gemm, 4 transpose cases, ld > width: max error %.1e\n", e);

  rc = select_quietly("tpu", &msg);
  CHECK(rc == GORP_EINPUT && strstr(msg, "unknown backend 'tpu' (expected cpu or cuda)"),
        "unknown name: %d, message '%s'", rc, msg);
  CHECK(!strcmp(backend_get()->name, "cpu"), "a refused name changed the backend to %s",
        backend_get()->name);
  free(msg);

  int skipped = 0;
  rc = select_quietly("cuda", &msg);
  if (rc == GORP_OK) {
    free(msg);
    e = compare(backend_get(), &rc);
    CHECK(e < 1e-4 && rc == GORP_OK,
          "cuda gemm against the naive product: max error %.1e, "
          "status %d",
          e, rc);
    printf("cuda gemm against the naive product: max error %.1e\n", e);
  } else {
    /* not built, module missing or no GPU: a message that names the backend, nothing else */
    CHECK(strstr(msg, "gorp: error: backend 'cuda'") != NULL && rc != GORP_OK,
          "cuda refused with %d and message '%s'", rc, msg);
    CHECK(!strcmp(backend_get()->name, "cpu"), "a refused cuda changed the backend to %s",
          backend_get()->name);
    printf("SKIP cuda backend: %.*s\n", (int)strcspn(msg, "\n"), msg);
    free(msg);
    skipped = 1;
  }
  backend_select("cpu");
  if (skipped) printf("(1 skipped)\n");
  return tests_finish();
}
