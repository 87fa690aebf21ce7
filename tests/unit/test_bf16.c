/* bf16.h: the fp32 -> bf16 rounding on exact cases (ties to even, NaN, infinities, denormals, the
 * largest finite values) and against its definition for every bf16 value with the low halves that
 * decide a rounding; the bf16 products (bf16_gemm_xw, bf16_gemm_wx) on both paths (oneDNN and the
 * sgemm fallback, forced) against a double-precision product of the same bf16-rounded inputs, for
 * odd shapes, every transpose combination, leading dimensions wider than the matrices and several
 * alpha/beta; the primitive cache (a repeated shape creates nothing, a new alpha does); bad
 * shapes refused with a message naming them. */
#include "gorp/bf16.h"
#include "gorp/err.h"
#include "gorp/rng.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float f32_of(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof(f));
  return f;
}

static void test_rounding_exact(void) {
  static const struct {
    uint32_t in;
    bf16 out;
    const char *what;
  } cases[] = {
      {0x3f800000u, 0x3f80, "1.0 exact"},
      {0x3f808000u, 0x3f80, "1 + 2^-8: tie, down to the even 0x3f80"},
      {0x3f818000u, 0x3f82, "tie above odd 0x3f81: up to even 0x3f82"},
      {0x3f808001u, 0x3f81, "just above the tie: up"},
      {0x3f807fffu, 0x3f80, "just below the tie: down"},
      {0xbf808000u, 0xbf80, "negative tie: to even"},
      {0x80000000u, 0x8000, "-0 keeps its sign"},
      {0x7f800000u, 0x7f80, "+inf"},
      {0xff800000u, 0xff80, "-inf"},
      {0x7f7fffffu, 0x7f80, "largest finite float rounds to +inf"},
      {0x7f7f7fffu, 0x7f7f, "below the half-way point stays finite"},
      {0x7f7f8000u, 0x7f80, "tie at the top: to even = inf"},
      {0x00000001u, 0x0000, "smallest denormal rounds to +0"},
      {0x00008000u, 0x0000, "denormal tie: to even 0"},
      {0x00018000u, 0x0002, "denormal tie above odd: up to even"},
      {0x00010000u, 0x0001, "smallest bf16 denormal, exact (no flush)"},
      {0x80010000u, 0x8001, "negative denormal, exact"},
      {0x007fffffu, 0x0080, "largest denormal rounds up to the smallest normal"},
      {0x7fc00000u, 0x7fc0, "quiet NaN"},
      {0xffc00000u, 0xffc0, "negative quiet NaN keeps its sign"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const bf16 got = bf16_from_f32(f32_of(cases[i].in));
    CHECK(got == cases[i].out, "%s: 0x%08x -> 0x%04x, expected 0x%04x", cases[i].what,
          (unsigned)cases[i].in, (unsigned)got, (unsigned)cases[i].out);
  }
  /* NaNs whose payload lies only in the low half would truncate to inf: they must stay NaN */
  const uint32_t nans[] = {0x7f800001u, 0xff800001u, 0x7f80ffffu, 0x7fffffffu};
  for (size_t i = 0; i < sizeof(nans) / sizeof(nans[0]); i++) {
    const float w = bf16_to_f32(bf16_from_f32(f32_of(nans[i])));
    CHECK(isnan(w) && signbit(w) == signbit(f32_of(nans[i])), "NaN 0x%08x became %g",
          (unsigned)nans[i], (double)w);
  }
  CHECK(bf16_to_f32(0x0001) == ldexpf(1.0f, -133), "bf16 0x0001 widens to 2^-133");
  CHECK(bf16_to_f32(0xc040) == -3.0f, "bf16 0xc040 widens to -3");
}

/* Every bf16 value h with the low halves that decide a rounding, through the array conversion
 * (bf16_round, the vectorised loop) against the rule spelled out: below half down, above half up,
 * exactly half to the even neighbour, NaN stays NaN; and widening gives back h exactly. */
static void test_rounding_all(void) {
  static const uint32_t lows[] = {0x0000, 0x0001, 0x7fff, 0x8000, 0x8001, 0xffff};
  enum { NL = sizeof(lows) / sizeof(lows[0]), N = 65536 * NL };
  float *in = xcalloc(N, sizeof(float)), *wide = xcalloc(N, sizeof(float));
  bf16 *out = xcalloc(N, sizeof(bf16)), *hs = xcalloc(N, sizeof(bf16));
  for (uint32_t h = 0; h < 65536; h++)
    for (int l = 0; l < NL; l++) {
      in[h * NL + l] = f32_of(h << 16 | lows[l]);
      hs[h * NL + l] = (bf16)h;
    }
  bf16_round(out, in, N);
  long bad = 0, bad_widen = 0;
  for (uint32_t h = 0; h < 65536; h++)
    for (int l = 0; l < NL; l++) {
      const uint32_t low = lows[l];
      const int is_nan = (h & 0x7f80) == 0x7f80 && ((h & 0x7f) || low);
      const bf16 got = out[h * NL + l];
      int ok;
      if (is_nan)
        ok = (got & 0x7f80) == 0x7f80 && (got & 0x7f) && (got & 0x8000) == (h & 0x8000);
      else {
        const uint32_t up = low > 0x8000 || (low == 0x8000 && (h & 1));
        ok = got == (bf16)(h + up);
      }
      if (!ok && bad++ < 5)
        printf("  0x%04x%04x -> 0x%04x\n", (unsigned)h, (unsigned)low, (unsigned)got);
    }
  bf16_widen(wide, hs, N);
  for (size_t i = 0; i < N; i++) {
    uint32_t u;
    memcpy(&u, &wide[i], sizeof(u));
    bad_widen += u != (uint32_t)hs[i] << 16;
  }
  CHECK(bad == 0, "%ld of %d conversions break round-to-nearest-even", bad, (int)N);
  CHECK(bad_widen == 0, "%ld of %d widenings are not exact", bad_widen, (int)N);
  free(in);
  free(wide);
  free(out);
  free(hs);
}

/* C (m, n) with ldc = alpha op(A) op(B) + beta C0 in double, from the bf16 values of A and B
 * (aw, bw: already widened); *bound the error bound of an fp32 evaluation for each element. */
static void reference(int ta, int tb, int m, int n, int k, float alpha, const float *aw, int lda,
                      const float *bw, int ldb, float beta, const float *c0, double *c,
                      double *bound, int ldc) {
  /* the products of two bf16 values are exact in fp32 (8 + 8 significant bits); summing k of them
   * in fp32 in any order errs by at most (k - 1) u sum |a b| (u = 2^-24, Higham's gamma), the
   * output scale and the beta sum add one rounding each (2 u), and kernels that flush denormal
   * products (AVX512-BF16's dot product does) lose at most 2^-126 per product */
  const double u = ldexp(1.0, -24);
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double s = 0.0, sabs = 0.0;
      for (int p = 0; p < k; p++) {
        const double x = ta ? aw[(size_t)p * lda + i] : aw[(size_t)i * lda + p];
        const double y = tb ? bw[(size_t)j * ldb + p] : bw[(size_t)p * ldb + j];
        s += x * y;
        sabs += fabs(x * y);
      }
      const double old = beta == 0.0f ? 0.0 : (double)beta * c0[(size_t)i * ldc + j];
      c[(size_t)i * ldc + j] = alpha * s + old;
      bound[(size_t)i * ldc + j] =
          (k + 3) * u * (fabs(alpha) * sabs + fabs(old)) + k * ldexp(1.0, -126);
    }
}

/* One shape on one cache, the three operand placements (xw: B bf16, wx: A bf16, ff: both fp32,
 * rounded by the call), all four transpose combinations; returns the worst error over bound seen
 * (<= 1 passes: an operand left unrounded errs by ~2^-9 relative, far beyond it). */
static double check_shape(bf16_gemm_cache *cache, int m, int n, int k, float alpha, float beta,
                          uint64_t seed) {
  double worst = 0.0;
  static const char *const mode_name[] = {"xw", "wx", "ff"};
  for (int mode = 0; mode < 3; mode++)
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++) {
        /* stored shapes with leading dimensions 3 wider than the rows */
        const int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
        const int lda = ac + 3, ldb = bc + 3, ldc = n + 3;
        float *a = xcalloc((size_t)ar * lda, sizeof(float)),
              *b = xcalloc((size_t)br * ldb, sizeof(float));
        float *aw = xcalloc((size_t)ar * lda, sizeof(float)),
              *bw = xcalloc((size_t)br * ldb, sizeof(float));
        bf16 *a16 = xcalloc((size_t)ar * lda, sizeof(bf16)),
             *b16 = xcalloc((size_t)br * ldb, sizeof(bf16));
        float *c = xcalloc((size_t)m * ldc, sizeof(float)),
              *c0 = xcalloc((size_t)m * ldc, sizeof(float));
        double *ref = xcalloc((size_t)m * ldc, sizeof(double)),
               *bound = xcalloc((size_t)m * ldc, sizeof(double));
        for (size_t i = 0; i < (size_t)ar * lda; i++) {
          a[i] = (float)rng_normal(seed, 1, 2 * mode + ta, i);
          a16[i] = bf16_from_f32(a[i]);
          aw[i] = bf16_to_f32(a16[i]);
        }
        for (size_t i = 0; i < (size_t)br * ldb; i++) {
          b[i] = (float)rng_normal(seed, 2, 2 * mode + tb, i);
          b16[i] = bf16_from_f32(b[i]);
          bw[i] = bf16_to_f32(b16[i]);
        }
        /* C's old values; NaN where beta = 0 must ignore them */
        for (size_t i = 0; i < (size_t)m * ldc; i++)
          c[i] = c0[i] = beta == 0.0f ? NAN : (float)rng_normal(seed, 3, 0, i);
        reference(ta, tb, m, n, k, alpha, aw, lda, bw, ldb, beta, c0, ref, bound, ldc);
        const int rc =
            mode == 0 ? bf16_gemm_xw(cache, ta, tb, m, n, k, alpha, a, lda, b16, ldb, beta, c, ldc)
            : mode == 1
                ? bf16_gemm_wx(cache, ta, tb, m, n, k, alpha, a16, lda, b, ldb, beta, c, ldc)
                : bf16_gemm_ff(cache, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        CHECK(rc == GORP_OK, "bf16_gemm_%s %dx%dx%d returned %d", mode_name[mode], m, n, k, rc);
        double w = 0.0;
        int pad_ok = 1;
        for (int i = 0; i < m; i++)
          for (int j = 0; j < ldc; j++) {
            const size_t e = (size_t)i * ldc + j;
            if (j >= n) { /* the padding of C is not written */
              pad_ok &= memcmp(&c[e], &c0[e], sizeof(float)) == 0;
              continue;
            }
            const double err = isfinite(c[e]) ? fabs(c[e] - ref[e]) / bound[e] : INFINITY;
            if (err > w) w = err;
          }
        CHECK(pad_ok, "bf16_gemm_%s %dx%dx%d wrote beyond n", mode_name[mode], m, n, k);
        if (w > 1.0)
          printf("  %s ta=%d tb=%d m=%d n=%d k=%d alpha=%g beta=%g: error %.3g x bound (%s)\n",
                 mode_name[mode], ta, tb, m, n, k, alpha, beta, w, bf16_gemm_kernel(cache));
        if (w > worst) worst = w;
        free(a), free(b), free(aw), free(bw), free(a16), free(b16);
        free(c), free(c0), free(ref), free(bound);
      }
  return worst;
}

static void test_gemm(bf16_path path, const char *name) {
  bf16_gemm_cache *cache;
  CHECK(bf16_gemm_create(&cache, path) == GORP_OK, "%s: create", name);
  CHECK(bf16_gemm_path(cache) == path, "%s: the path asked for is the one used", name);
  static const struct {
    int m, n, k;
  } shapes[] = {{1, 1, 1},     {3, 17, 64}, {17, 3, 577},  {64, 577, 17},
                {1, 64, 1536}, {577, 1, 3}, {17, 64, 1536}};
  static const float ab[][2] = {{1.0f, 0.0f}, {0.5f, 1.0f}, {-1.25f, 0.75f}};
  double worst = 0.0;
  uint64_t seed = 11;
  for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
    for (size_t v = 0; v < sizeof(ab) / sizeof(ab[0]); v++)
      worst = fmax(worst, check_shape(cache, shapes[s].m, shapes[s].n, shapes[s].k, ab[v][0],
                                      ab[v][1], seed++));
  /* the fallback with a weight larger than its block (2^22 floats): widened in two blocks of C's
   * columns (xw) or rows (wx), 256 and 1 */
  if (path == BF16_PATH_SGEMM) {
    worst = fmax(worst, check_shape(cache, 2, 257, 16384, 0.5f, 1.0f, seed++));
    worst = fmax(worst, check_shape(cache, 257, 2, 16384, 1.0f, 0.0f, seed++));
  }
  CHECK(worst <= 1.0, "%s: worst error %.3g x the fp32 accumulation bound", name, worst);
  printf("%s (%s): worst error %.3g of the bound\n", name, bf16_gemm_kernel(cache), worst);
  bf16_gemm_free(cache);
}

/* A repeated call reuses its primitive (and gives the same bits); a new alpha or shape makes one.
 */
static void test_cache(void) {
  bf16_gemm_cache *cache;
  CHECK(bf16_gemm_create(&cache, BF16_PATH_ONEDNN) == GORP_OK, "create");
  enum { M = 33, N = 40, K = 65, T = 70 }; /* T shapes (t, N, K), t = 1..T, overflow the cache */
  float a[T * K], c1[M * N], c2[T * N];
  bf16 w[N * K];
  for (int i = 0; i < T * K; i++) a[i] = (float)rng_normal(5, 1, 0, i);
  for (int i = 0; i < N * K; i++) w[i] = bf16_from_f32((float)rng_normal(5, 2, 0, i));
  int rc = bf16_gemm_xw(cache, 0, 1, M, N, K, 1.0f, a, K, w, K, 0.0f, c1, N);
  const long n1 = bf16_gemm_n_created(cache);
  rc |= bf16_gemm_xw(cache, 0, 1, M, N, K, 1.0f, a, K, w, K, 0.0f, c2, N);
  CHECK(rc == GORP_OK && n1 == 1 && bf16_gemm_n_created(cache) == 1,
        "a repeated shape reuses its primitive (created %ld then %ld)", n1,
        bf16_gemm_n_created(cache));
  CHECK(!memcmp(c1, c2, sizeof(c1)), "a repeated call gives the same bits");
  CHECK(bf16_gemm_kernel(cache)[0] != '\0', "the kernel's name is known");
  rc = bf16_gemm_xw(cache, 0, 1, M, N, K, 2.0f, a, K, w, K, 0.0f, c2, N);
  CHECK(rc == GORP_OK && bf16_gemm_n_created(cache) == 2, "a new alpha creates a primitive");
  int same = 1;
  for (int i = 0; i < M * N; i++) same &= c2[i] == 2.0f * c1[i];
  CHECK(same, "alpha 2 doubles every element (scaling by 2 is exact)");
  /* more shapes than the cache keeps: the oldest are replaced and still computed right */
  for (int t = 1; t <= T && rc == GORP_OK; t++)
    rc = bf16_gemm_xw(cache, 0, 1, t, N, K, 1.0f, a, K, w, K, 0.0f, c2, N);
  CHECK(rc == GORP_OK, "%d shapes through a cache of fewer", (int)T);
  rc = bf16_gemm_xw(cache, 0, 1, M, N, K, 1.0f, a, K, w, K, 0.0f, c2, N);
  CHECK(rc == GORP_OK && !memcmp(c1, c2, sizeof(c1)), "an evicted shape, created again, agrees");
  bf16_gemm_free(cache);
}

/* BF16_PATH_SPLIT routes by the activations' rows: oneDNN below BF16_SPLIT_ROWS, the widened
 * sgemm from there, for the weight on either side. */
static void test_split_routing(void) {
  bf16_gemm_cache *cache;
  CHECK(bf16_gemm_create(&cache, BF16_PATH_SPLIT) == GORP_OK, "create split");
  enum { R = BF16_SPLIT_ROWS, N = 8, K = 16 };
  float x[R * K], c[R * N];
  bf16 w[N * K];
  for (int i = 0; i < R * K; i++) x[i] = (float)rng_normal(9, 1, 0, i);
  for (int i = 0; i < N * K; i++) w[i] = bf16_from_f32((float)rng_normal(9, 2, 0, i));
  static const struct { int rows, wx; } cases[] = {{R - 1, 0}, {R, 0}, {R - 1, 1}, {R, 1}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const int rows = cases[i].rows;
    /* xw: C (rows, N) = X (rows, K) W^T; wx: C (N, rows) = W (N, K) X^T */
    const int rc = cases[i].wx
                       ? bf16_gemm_wx(cache, 0, 1, N, rows, K, 1.0f, w, K, x, K, 0.0f, c, rows)
                       : bf16_gemm_xw(cache, 0, 1, rows, N, K, 1.0f, x, K, w, K, 0.0f, c, N);
    const int sgemm = !strcmp(bf16_gemm_kernel(cache), "sgemm");
    CHECK(rc == GORP_OK && sgemm == (rows >= R), "%s with %d rows of activations ran '%s'",
          cases[i].wx ? "wx" : "xw", rows, bf16_gemm_kernel(cache));
  }
  bf16_gemm_free(cache);
}

static void test_bad_shape(void) {
  bf16_gemm_cache *cache;
  CHECK(bf16_gemm_create(&cache, BF16_PATH_AUTO) == GORP_OK, "create auto");
  float a[4] = {0}, c[4] = {0};
  bf16 w[4] = {0};
  capture_begin();
  const int rc = bf16_gemm_xw(cache, 0, 0, 2, 2, 2, 1.0f, a, 1, w, 2, 0.0f, c, sizeof(bf16));
  char *msg = capture_end();
  CHECK(rc == GORP_EINPUT && strstr(msg, "lda=1"), "lda < k refused naming it: %d '%s'", rc, msg);
  free(msg);
  bf16_gemm_free(cache);
  capture_begin();
  const int rc_path = bf16_gemm_create(&cache, (bf16_path)7);
  msg = capture_end();
  CHECK(rc_path == GORP_EINPUT && !cache && strstr(msg, "path 7"), "unknown path refused: '%s'",
        msg);
  free(msg);
}

int main(void) {
  test_rounding_exact();
  test_rounding_all();
  test_gemm(BF16_PATH_ONEDNN, "oneDNN");
  test_gemm(BF16_PATH_SGEMM, "sgemm fallback");
  test_gemm(BF16_PATH_SPLIT, "split at 64 rows");
  test_split_routing();
  test_cache();
  test_bad_shape();
  return tests_finish();
}
