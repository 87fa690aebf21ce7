/* Finite-difference checks of every op's backward (ops.h). For an op y = f(x) and a fixed random
 * R, L = sum(R * y); the analytic dL/dx from the op's backward (with dout = R) must match the
 * central difference (L(x + h e_i) - L(x - h e_i)) / 2h on sampled coordinates. In float32 with
 * h = 1e-2 the truncation + rounding error measured here is 1e-6 to 2e-4 relative, up to 1.7e-3
 * for attention over T = 70 (the float rounding of L over many outputs, divided by 2h); a wrong
 * term gives O(1). Each check's tolerance is 10x its measured worst error, rounded up to one
 * significant digit (the same in the release and the sanitizer build), so that a small wrong term
 * fails too. */
#include "gorp/ops.h"
#include "gorp/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int n_pass, n_fail;

/* Counts a failing status of an op as a failed check (the CPU backend's products never fail). */
static void ok(int status) {
  if (!status) return;
  printf("FAIL an op returned status %d\n", status);
  n_fail++;
}

static float *randv(size_t n, uint64_t key, float scale) {
  float *x = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) x[i] = (float)(scale * rng_normal(7, 99, key, i));
  return x;
}

typedef double (*loss_fn)(void *ctx);

/* Compares grad (n) with central differences of fn w.r.t. x (n) on up to 48 coordinates; the worst
 * relative error must be below tol. */
static void check(const char *name, loss_fn fn, void *ctx, float *x, const float *grad, size_t n,
                  double tol) {
  const float h = 1e-2f;
  double gmax = 0.0;
  for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(grad[i]));
  double worst = 0.0;
  size_t samples = n < 48 ? n : 48;
  for (size_t s = 0; s < samples; s++) {
    size_t i = n <= 48 ? s : (size_t)(rng_uniform(3, 5, s, n) * n);
    float keep = x[i];
    x[i] = keep + h;
    double lp = fn(ctx);
    x[i] = keep - h;
    double lm = fn(ctx);
    x[i] = keep;
    double num = (lp - lm) / (2.0 * h);
    double err = fabs(num - grad[i]) / (fabs(grad[i]) + 1e-2 * gmax + 1e-6);
    worst = fmax(worst, err);
  }
  int ok = worst < tol && gmax > 0;
  printf("%s %-28s worst relative error %.2e (tolerance %.0e, max |grad| %.2e)\n",
         ok ? "PASS" : "FAIL", name, worst, tol, gmax);
  ok ? n_pass++ : n_fail++;
}

static double dot(const float *a, const float *b, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
  return s;
}

/* ---- matmul ---- */
enum { N = 6, C = 10, OC = 7 };
static struct { float *x, *w, *y, *r; } mm;
static double mm_loss(void *ctx) {
  (void)ctx;
  ok(matmul_forward(mm.y, mm.x, op_w32(mm.w), N, C, OC));
  return dot(mm.y, mm.r, N * OC);
}
static void test_matmul(void) {
  mm.x = randv(N * C, 1, 1), mm.w = randv(OC * C, 2, 1), mm.y = randv(N * OC, 3, 0),
  mm.r = randv(N * OC, 4, 1);
  float *dx = calloc(N * C, 4), *dw = calloc(OC * C, 4);
  ok(matmul_backward(dx, dw, mm.r, mm.x, op_w32(mm.w), N, C, OC));
  check("matmul dinp", mm_loss, NULL, mm.x, dx, N * C, 6e-4);
  check("matmul dweight", mm_loss, NULL, mm.w, dw, OC * C, 6e-4);
  /* matmul_forward_add must add exactly the product */
  float *y2 = randv(N * OC, 5, 1), *y3 = malloc(N * OC * 4);
  memcpy(y3, y2, N * OC * 4);
  ok(matmul_forward_add(y3, mm.x, op_w32(mm.w), N, C, OC));
  ok(matmul_forward(mm.y, mm.x, op_w32(mm.w), N, C, OC));
  double e = 0;
  for (int i = 0; i < N * OC; i++) e = fmax(e, fabs(y3[i] - y2[i] - mm.y[i]));
  printf("%s matmul_forward_add           max error %.2e\n", e < 1e-5 ? "PASS" : "FAIL", e);
  e < 1e-5 ? n_pass++ : n_fail++;
  /* matmul_backward_set overwrites dinp (garbage in it must not matter) and accumulates dw */
  float *dx2 = randv(N * C, 6, 1), *dw2 = calloc(OC * C, 4);
  ok(matmul_backward_set(dx2, dw2, mm.r, mm.x, op_w32(mm.w), N, C, OC));
  e = 0;
  for (int i = 0; i < N * C; i++) e = fmax(e, fabs(dx2[i] - dx[i]));
  for (int i = 0; i < OC * C; i++) e = fmax(e, fabs(dw2[i] - dw[i]));
  printf("%s matmul_backward_set          max error %.2e\n", e < 1e-5 ? "PASS" : "FAIL", e);
  e < 1e-5 ? n_pass++ : n_fail++;
  free(mm.x), free(mm.w), free(mm.y), free(mm.r), free(dx), free(dw), free(y2), free(y3);
  free(dx2), free(dw2);
}

/* ---- rmsnorm ---- */
static struct { float *x, *w, *y, *r, *rstd; } rn;
static double rn_loss(void *ctx) {
  (void)ctx;
  rmsnorm_forward(rn.y, rn.rstd, rn.x, rn.w, N, C, 1e-5f);
  return dot(rn.y, rn.r, N * C);
}
static void test_rmsnorm(void) {
  rn.x = randv(N * C, 11, 1), rn.w = randv(C, 12, 1), rn.y = calloc(N * C, 4),
  rn.r = randv(N * C, 13, 1), rn.rstd = calloc(N, 4);
  float *dx = calloc(N * C, 4), *dw = calloc(C, 4);
  rn_loss(NULL);
  rmsnorm_backward(dx, dw, rn.r, rn.x, rn.w, rn.rstd, N, C);
  check("rmsnorm dinp", rn_loss, NULL, rn.x, dx, N * C, 2e-3);
  check("rmsnorm dweight", rn_loss, NULL, rn.w, dw, C, 4e-5);
  free(rn.x), free(rn.w), free(rn.y), free(rn.r), free(rn.rstd), free(dx), free(dw);
}

/* ---- rope ---- */
enum { RB = 2, RT = 5, RH = 3, RD = 8 };
static struct { float *x, *y, *r, *cs, *sn; } rp;
static double rp_loss(void *ctx) {
  (void)ctx;
  memcpy(rp.y, rp.x, RB * RT * RH * RD * 4);
  rope_forward(rp.y, rp.cs, rp.sn, RB, RT, RH, RD);
  return dot(rp.y, rp.r, RB * RT * RH * RD);
}
static void test_rope(void) {
  const int n = RB * RT * RH * RD;
  rp.x = randv(n, 21, 1), rp.y = calloc(n, 4), rp.r = randv(n, 22, 1);
  rp.cs = calloc(RT * RD / 2, 4), rp.sn = calloc(RT * RD / 2, 4);
  rope_tables(rp.cs, rp.sn, 0, RT, RD, 10000.0f);
  float *dx = malloc(n * 4);
  memcpy(dx, rp.r, n * 4);
  rope_backward(dx, rp.cs, rp.sn, RB, RT, RH, RD);
  check("rope dinp", rp_loss, NULL, rp.x, dx, n, 3e-4);
  free(rp.x), free(rp.y), free(rp.r), free(rp.cs), free(rp.sn), free(dx);
}

/* ---- attention (grouped-query: 4 heads over 2 kv heads); T = 70 crosses a causal block ---- */
enum { AB = 2, AH = 4, AKV = 2, AD = 6 };
static struct {
  int T;
  float *q, *k, *v, *y, *att, *r;
} at;
static double at_loss(void *ctx) {
  (void)ctx;
  ok(attention_forward(at.y, at.att, at.q, at.k, at.v, AB, at.T, AH, AKV, AD));
  return dot(at.y, at.r, AB * at.T * AH * AD);
}
/* tol: dq, dk, dv tolerances for this T */
static void test_attention(int T, const double tol[3]) {
  const int nq = AB * T * AH * AD, nk = AB * T * AKV * AD;
  at.T = T;
  at.q = randv(nq, 31, 1), at.k = randv(nk, 32, 1), at.v = randv(nk, 33, 1);
  at.y = calloc(nq, 4), at.att = calloc(AB * AH * T * T, 4), at.r = randv(nq, 34, 1);
  float *dq = calloc(nq, 4), *dk = calloc(nk, 4), *dv = calloc(nk, 4),
        *scratch = calloc(2 * T * T, 4);
  at_loss(NULL);
  ok(attention_backward(dq, dk, dv, scratch, 2, at.r, at.att, at.q, at.k, at.v, AB, T, AH, AKV,
                        AD));
  char name[64];
  snprintf(name, sizeof(name), "attention dq (T=%d)", T);
  check(name, at_loss, NULL, at.q, dq, nq, tol[0]);
  snprintf(name, sizeof(name), "attention dk (GQA, T=%d)", T);
  check(name, at_loss, NULL, at.k, dk, nk, tol[1]);
  snprintf(name, sizeof(name), "attention dv (GQA, T=%d)", T);
  check(name, at_loss, NULL, at.v, dv, nk, tol[2]);
  free(at.q), free(at.k), free(at.v), free(at.y), free(at.att), free(at.r);
  free(dq), free(dk), free(dv), free(scratch);
}

/* ---- swiglu ---- */
enum { SN = 40 };
static struct { float *g, *u, *h, *r; } sw;
static double sw_loss(void *ctx) {
  (void)ctx;
  swiglu_forward(sw.h, sw.g, sw.u, SN);
  return dot(sw.h, sw.r, SN);
}
static void test_swiglu(void) {
  sw.g = randv(SN, 41, 2), sw.u = randv(SN, 42, 1), sw.h = calloc(SN, 4), sw.r = randv(SN, 43, 1);
  float *dg = calloc(SN, 4), *du = calloc(SN, 4);
  swiglu_backward(dg, du, sw.r, sw.g, sw.u, SN);
  check("swiglu dgate", sw_loss, NULL, sw.g, dg, SN, 4e-4);
  check("swiglu dup", sw_loss, NULL, sw.u, du, SN, 7e-5);
  free(sw.g), free(sw.u), free(sw.h), free(sw.r), free(dg), free(du);
}

/* ---- embedding ---- */
enum { EV = 9, EN = 7 };
static struct {
  float *emb, *y, *r;
  int tok[EN];
} em;
static double em_loss(void *ctx) {
  (void)ctx;
  embedding_forward(em.y, em.tok, op_w32(em.emb), EN, C);
  return dot(em.y, em.r, EN * C);
}
static void test_embedding(void) {
  em.emb = randv(EV * C, 51, 1), em.y = calloc(EN * C, 4), em.r = randv(EN * C, 52, 1);
  int tok[EN] = {3, 0, 8, 3, 5, 3, 1}; /* repeated ids must accumulate */
  memcpy(em.tok, tok, sizeof(tok));
  float *de = calloc(EV * C, 4);
  embedding_backward(de, em.r, em.tok, EN, C);
  check("embedding dweight", em_loss, NULL, em.emb, de, EV * C, 1e-5);
  free(em.emb), free(em.y), free(em.r), free(de);
}

/* ---- cross-entropy (with ignored positions) ---- */
enum { CN = 5, CV = 11 };
static struct {
  float *logits, *work;
  const float *w; /* per-position weights, or NULL */
  int tgt[CN];
} ce;
static double ce_loss(void *ctx) {
  (void)ctx;
  int n;
  return crossentropy_forward(&n, ce.logits, ce.tgt, ce.w, CN, CV) / 3.0;
}
static void test_crossentropy(void) {
  ce.logits = randv(CN * CV, 61, 2), ce.work = malloc(CN * CV * 4);
  int tgt[CN] = {4, -1, 0, 10, -1};
  memcpy(ce.tgt, tgt, sizeof(tgt));
  memcpy(ce.work, ce.logits, CN * CV * 4);
  crossentropy_backward(ce.work, ce.tgt, ce.w, CN, CV, 3.0f);
  check("crossentropy dlogits", ce_loss, NULL, ce.logits, ce.work, CN * CV, 2e-4);
  static const float w[CN] = {0.5f, 2.0f, 1.5f, 0.25f, 1.0f};
  ce.w = w;
  memcpy(ce.work, ce.logits, CN * CV * 4);
  crossentropy_backward(ce.work, ce.tgt, ce.w, CN, CV, 3.0f);
  check("weighted crossentropy dlogits", ce_loss, NULL, ce.logits, ce.work, CN * CV, 2e-4);
  ce.w = NULL;
  free(ce.logits), free(ce.work);
}

int main(void) {
  test_matmul();
  test_rmsnorm();
  test_rope();
  test_attention(5, (const double[3]){2e-3, 4e-3, 6e-4});
  test_attention(70, (const double[3]){7e-3, 2e-2, 3e-3});
  test_swiglu();
  test_embedding();
  test_crossentropy();
  printf("%d passed, %d failed\n", n_pass, n_fail);
  return n_fail != 0;
}
