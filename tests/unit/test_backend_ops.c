/* Conformance of the backend ops table (backend.h), ggml's test-backend-ops in spirit: every op
 * of a device-resident step, on every backend present, against the CPU.
 *  - The CPU table itself: each element-wise entry computes, to the bit, the kernels.h function of
 *    its name (a crossed wire, e.g. rope_backward pointing at the forward, fails), its SVD is
 *    linalg.h's; gemm and gemm_bf16 equal a double-precision product of the same values; memory
 *    round-trips.
 *  - Every other backend (cuda): its table is complete, memory round-trips, and each op on the
 *    backend's memory equals the CPU table's op on the same inputs within that op's tolerance
 *    (listed with the op, with why), outputs that accumulate (+=) starting from the same
 *    non-zero values.
 * Usage: test_backend_ops [BACKEND]. Without an argument: the CPU part, then each other backend,
 * reported as skipped (with the reason) when it cannot open, e.g. without a GPU. With one: that
 * backend alone against the CPU, and exit 77 (ctest's skip) when it cannot open. */
#include "gorp/backend.h"
#include "gorp/bf16.h"
#include "gorp/err.h"
#include "gorp/kernels.h"
#include "gorp/linalg.h"
#include "gorp/rng.h"
#include "testutil.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Shapes: T crosses the CPU attention's 64-row block, grouped queries (2 per kv head), a
 * vocabulary small enough that tokens repeat (embedding_backward's scatter adds), odd sizes. */
enum { B = 2, T = 70, H = 4, KV = 2, D = 16, QD = H * D, KD = KV * D, N = B * T, V = 301 };
enum { FF = 3 * QD + 7 };                     /* swiglu's length */
enum { GM = 37, GN = 29, GK = 45, GLD = 53 }; /* the gemms: ld wider than every operand */
static const float EPS = 1e-5f;

typedef enum { IN, OUT, HOST_OUT } buf_kind;

/* One argument of an op: where it lives, its bytes, its host values (inputs, or the outputs'
 * starting values) and whether it holds floats (compared) or ints/bf16 (inputs only). */
typedef struct buf {
  buf_kind kind;
  size_t bytes;
  void *host;
  int is_double; /* a HOST_OUT double (crossentropy's loss) */
  int is_bf16;   /* an OUT of bf16 values: compared bit for bit */
} buf;

enum { MAX_BUFS = 11 };

/* An op: its arguments; the table entry on pointers p (backend memory; host for HOST_OUT); the
 * reference on host pointers for the CPU table (the kernels.h function of the same name, or a
 * double-precision product) with the CPU's tolerance; and another backend's tolerance against
 * the CPU table, relative to each output's largest |value|. */
typedef struct op_case {
  const char *name;
  int n;
  buf b[MAX_BUFS];
  int (*run)(const backend_ops *be, void **p);
  void (*ref)(void **p);
  double cpu_tol, tol;
} op_case;

static float *randn(size_t n, uint64_t stream, float scale) {
  float *x = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) x[i] = scale * (float)rng_normal(19, stream, i, 0);
  return x;
}
static buf f_in(size_t n, uint64_t stream, float scale) {
  return (buf){.kind = IN, .bytes = n * sizeof(float), .host = randn(n, stream, scale)};
}
static buf f_out(size_t n, uint64_t stream) { /* a non-zero start: += outputs must add to it */
  return (buf){.kind = OUT, .bytes = n * sizeof(float), .host = randn(n, stream, 0.5f)};
}
static buf copy_in(const void *src, size_t bytes) {
  void *c = malloc(bytes);
  memcpy(c, src, bytes);
  return (buf){.kind = IN, .bytes = bytes, .host = c};
}
static buf h16_in(size_t n, uint64_t stream) {
  float *x = randn(n, stream, 1.0f);
  bf16 *h = malloc(n * sizeof(bf16));
  bf16_round(h, x, n);
  free(x);
  return (buf){.kind = IN, .bytes = n * sizeof(bf16), .host = h};
}
static buf h16_out(size_t n, uint64_t stream) {
  buf b = h16_in(n, stream);
  b.kind = OUT;
  b.is_bf16 = 1;
  return b;
}

/* the shared inputs: tokens (N) < V with repeats, targets (N) with ignored (-1) rows, weights (N),
 * RoPE tables (T, D/2), attention probabilities (B, H, T, T) from a CPU forward */
static int tokens[N], targets[N];
static float cos_t[T * D / 2], sin_t[T * D / 2];
static float *att_probs;

#define P(i) ((float *)p[i])
#define CP(i) ((const float *)p[i])

/* --- the products, against double references ------------------------------------------------ */

/* C (GM, GN) with ld GLD += op(A) op(B) in double, A and B widened from fp32 (a32) or bf16 */
static void ref_product(int ta, int tb, const float *a32, const bf16 *a16, const float *b32,
                        const bf16 *b16, float *c) {
  for (int i = 0; i < GM; i++)
    for (int j = 0; j < GN; j++) {
      double s = 0.0;
      for (int q = 0; q < GK; q++) {
        const size_t ia = ta ? (size_t)q * GLD + i : (size_t)i * GLD + q;
        const size_t ib = tb ? (size_t)j * GLD + q : (size_t)q * GLD + j;
        s +=
            (double)(a32 ? a32[ia] : bf16_to_f32(a16[ia])) * (b32 ? b32[ib] : bf16_to_f32(b16[ib]));
      }
      c[(size_t)i * GLD + j] = (float)(0.7 * s + 0.3 * c[(size_t)i * GLD + j]);
    }
}

/* the four transpose cases, each into its own C (GM, GLD) */
static int run_gemm(const backend_ops *be, void **p) {
  for (int t = 0; t < 4; t++)
    GORP_CALL(be->gemm(t & 1, t >> 1, GM, GN, GK, 0.7f, CP(0), GLD, CP(1), GLD, 0.3f,
                       P(2) + (size_t)t * GM * GLD, GLD));
  return GORP_OK;
}
static void ref_gemm(void **p) {
  for (int t = 0; t < 4; t++)
    ref_product(t & 1, t >> 1, CP(0), NULL, CP(1), NULL, P(2) + (size_t)t * GM * GLD);
}
static int run_gemm_bf16(const backend_ops *be, void **p) {
  for (int t = 0; t < 4; t++)
    GORP_CALL(be->gemm_bf16(t & 1, t >> 1, GM, GN, GK, 0.7f, p[0], GLD, p[1], GLD, 0.3f,
                            P(2) + (size_t)t * GM * GLD, GLD));
  return GORP_OK;
}
static void ref_gemm_bf16(void **p) {
  for (int t = 0; t < 4; t++)
    ref_product(t & 1, t >> 1, NULL, p[0], NULL, p[1], P(2) + (size_t)t * GM * GLD);
}

/* --- the element-wise ops: table entry and kernels.h side by side ---------------------------- */

static int run_emb_f(const backend_ops *be, void **p) {
  return be->embedding_forward(P(0), p[1], CP(2), N, QD);
}
static void ref_emb_f(void **p) {
  embedding_forward(P(0), p[1], op_w32(CP(2)), N, QD);
}
static int run_emb_f16(const backend_ops *be, void **p) {
  return be->embedding_forward_bf16(P(0), p[1], p[2], N, QD);
}
static void ref_emb_f16(void **p) {
  embedding_forward(P(0), p[1], (op_weight){.h = p[2]}, N, QD);
}
/* rounding's special values after random ones: ties both ways, NaN, infinities, overflow to inf */
enum { ROUND_N = 1000 };
static int run_round(const backend_ops *be, void **p) {
  return be->bf16_round(p[0], CP(1), ROUND_N);
}
static void ref_round(void **p) {
  bf16_round(p[0], CP(1), ROUND_N);
}
static int run_emb_b(const backend_ops *be, void **p) {
  return be->embedding_backward(P(0), CP(1), p[2], N, QD);
}
static void ref_emb_b(void **p) {
  embedding_backward(P(0), CP(1), p[2], N, QD);
}
static int run_rms_f(const backend_ops *be, void **p) {
  return be->rmsnorm_forward(P(0), P(1), CP(2), CP(3), N, QD, EPS);
}
static void ref_rms_f(void **p) {
  rmsnorm_forward(P(0), P(1), CP(2), CP(3), N, QD, EPS);
}
static int run_rms_b(const backend_ops *be, void **p) {
  return be->rmsnorm_backward(P(0), P(1), CP(2), CP(3), CP(4), CP(5), N, QD);
}
static void ref_rms_b(void **p) {
  rmsnorm_backward(P(0), P(1), CP(2), CP(3), CP(4), CP(5), N, QD);
}
static int run_rope_f(const backend_ops *be, void **p) {
  return be->rope_forward(P(0), CP(1), CP(2), B, T, H, D);
}
static void ref_rope_f(void **p) {
  rope_forward(P(0), CP(1), CP(2), B, T, H, D);
}
static int run_rope_b(const backend_ops *be, void **p) {
  return be->rope_backward(P(0), CP(1), CP(2), B, T, H, D);
}
static void ref_rope_b(void **p) {
  rope_backward(P(0), CP(1), CP(2), B, T, H, D);
}
static int run_att_f(const backend_ops *be, void **p) {
  return be->attention_forward(P(0), P(1), CP(2), CP(3), CP(4), B, T, H, KV, D);
}
static void ref_att_f(void **p) {
  if (attention_forward(P(0), P(1), CP(2), CP(3), CP(4), B, T, H, KV, D)) abort();
}
static int run_att_b(const backend_ops *be, void **p) {
  return be->attention_backward(P(0), P(1), P(2), P(3), omp_get_max_threads(), CP(4), CP(5), CP(6),
                                CP(7), CP(8), B, T, H, KV, D);
}
static void ref_att_b(void **p) {
  if (attention_backward(P(0), P(1), P(2), P(3), omp_get_max_threads(), CP(4), CP(5), CP(6), CP(7),
                         CP(8), B, T, H, KV, D))
    abort();
}
/* decoding: NDEC rows, each a position of one of the B sequences' caches of T positions (the
 * last one included), two rows of one sequence */
enum { NDEC = 5 };
static const int dec_seq[NDEC] = {1, 0, 1, 0, 1}, dec_pos[NDEC] = {T - 1, 0, 33, 64, 5};
static int run_att_d(const backend_ops *be, void **p) {
  return be->attention_decode(P(0), CP(1), CP(2), CP(3), p[4], p[5], P(6), omp_get_max_threads(),
                              NDEC, T, H, KV, D);
}
static void ref_att_d(void **p) {
  if (attention_decode(P(0), CP(1), CP(2), CP(3), p[4], p[5], P(6), omp_get_max_threads(), NDEC, T,
                       H, KV, D))
    abort();
}
static int run_swiglu_f(const backend_ops *be, void **p) {
  return be->swiglu_forward(P(0), CP(1), CP(2), FF);
}
static void ref_swiglu_f(void **p) {
  swiglu_forward(P(0), CP(1), CP(2), FF);
}
static int run_swiglu_b(const backend_ops *be, void **p) {
  return be->swiglu_backward(P(0), P(1), CP(2), CP(3), CP(4), FF);
}
static void ref_swiglu_b(void **p) {
  swiglu_backward(P(0), P(1), CP(2), CP(3), CP(4), FF);
}
static int run_ce_f(const backend_ops *be, void **p) {
  return be->crossentropy_forward(p[0], p[1], CP(2), p[3], CP(4), N, V);
}
static void ref_ce_f(void **p) {
  *(double *)p[0] = crossentropy_forward(p[1], CP(2), p[3], CP(4), N, V);
}
static int run_ce_b(const backend_ops *be, void **p) {
  return be->crossentropy_backward(P(0), p[1], CP(2), N, V, 37.0f);
}
static void ref_ce_b(void **p) {
  crossentropy_backward(P(0), p[1], CP(2), N, V, 37.0f);
}
enum { DROP_IN = 50, DROP_FIRST = 7 }; /* a shard's block of a wider row */
static const float DROP_P = 0.3f;
static int run_drop(const backend_ops *be, void **p) {
  GORP_CALL(be->dropout_rows(P(0), CP(2), p[3], N, DROP_IN, DROP_FIRST, DROP_P, 0));
  return be->dropout_rows(P(1), CP(2), p[3], N, DROP_IN, DROP_FIRST, DROP_P, 1);
}
static void ref_drop(void **p) {
  dropout_rows(P(0), CP(2), p[3], N, DROP_IN, DROP_FIRST, DROP_P, 0);
  dropout_rows(P(1), CP(2), p[3], N, DROP_IN, DROP_FIRST, DROP_P, 1);
}
/* the rows with a target (every one but each 7th), as the head's rows */
enum { GATHER_C = 45 };
static int head_rows[N], n_head_rows;
static int run_rows(const backend_ops *be, void **p) {
  GORP_CALL(be->rows_gather(P(0), CP(2), p[3], n_head_rows, GATHER_C));
  return be->rows_scatter(P(1), CP(2), p[3], n_head_rows, GATHER_C);
}
static void ref_rows(void **p) {
  rows_gather(P(0), CP(2), p[3], n_head_rows, GATHER_C);
  rows_scatter(P(1), CP(2), p[3], n_head_rows, GATHER_C);
}
/* two shapes: more rows than columns and fewer (cuSOLVER's gesvd takes only the first) */
enum { SM1 = 40, SN1 = 30, SK1 = 5, SM2 = 20, SN2 = 33, SK2 = 4 };
static int run_svd(const backend_ops *be, void **p) {
  GORP_CALL(be->svd_topk_right(P(0), P(1), CP(4), SM1, SN1, SK1));
  return be->svd_topk_right(P(2), P(3), CP(5), SM2, SN2, SK2);
}
static void ref_svd(void **p) {
  linalg_ws ws = {0};
  if (linalg_ws_reserve(&ws, SM1 + SM2, SN1 + SN2, SK1 + SK2, NULL) ||
      linalg_topk_right(P(0), P(1), CP(4), SM1, SN1, SK1, SVD_EXACT, NULL, &ws) ||
      linalg_topk_right(P(2), P(3), CP(5), SM2, SN2, SK2, SVD_EXACT, NULL, &ws))
    abort();
  linalg_ws_free(&ws);
}
static const adamw_hyper HYPER = {
    .lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-6f, .weight_decay = 0.1f, .step = 3};
static int run_adamw(const backend_ops *be, void **p) {
  return be->adamw_update(P(0), P(1), P(2), CP(3), N * QD, HYPER);
}
static void ref_adamw(void **p) {
  adamw_update(P(0), P(1), P(2), CP(3), N * QD, HYPER);
}

/* Every op of the table, with fresh arguments (the caller frees them with cases_free). */
static int cases_make(op_case *c) {
  int n = 0;
  const size_t ld2 = (size_t)GLD * GLD, c4 = 4 * (size_t)GM * GLD;
  const size_t nq = (size_t)N * QD, nk = (size_t)N * KD, natt = (size_t)B * H * T * T;
  float *v_moment = randn(nq, 40, 1e-2f);
  for (size_t i = 0; i < nq; i++) v_moment[i] *= v_moment[i]; /* a second moment is >= 0 */
  float *rstd = malloc(N * sizeof(float)), *xn = randn(nq, 41, 1.0f), *y = malloc(nq * 4);
  float *w = randn(QD, 42, 1.0f);
  rmsnorm_forward(y, rstd, xn, w, N, QD, EPS); /* the backward's rstd, as a forward saves it */
  free(y);
  const size_t n_scratch = (size_t)omp_get_max_threads() * T * T * sizeof(float);
  /* attention_backward's (CPU) */
  const buf scratch = {.kind = IN, .bytes = n_scratch, .host = calloc(n_scratch, 1)};
  /* The tolerances another backend gets (relative to each output's largest value). The CUDA
   * kernels compute each element with the CPU's expressions (exp_fast included, no fused
   * multiply-adds), so only the order of a row's sums may differ:
   *  - products, 1e-5: cuBLAS sums k = 45 terms in its own order (a bf16 product's inputs are
   *    exact, so the same);
   *  - embedding's copy, 0; its scatter, 1e-6: the order of a few additions of repeated tokens;
   *  - rmsnorm, rope, swiglu, adamw, 1e-5: a row's sum of squares in another order, and room for
   *    a device whose rounding of sqrt or division differs in the last bit;
   *  - attention, 1e-4: a softmax over up to 70 keys and two sums per row, then the backward's
   *    four sums in another order;
   *  - cross-entropy, 1e-5: a log-sum-exp over 301 logits per row, summed in double;
   *  - the SVD, 1e-4: another algorithm (Jacobi against LAPACK's bidiagonalization), so the
   *    vectors agree to about rounding / the gap between singular values (a few percent here);
   *    a vector of the other sign is 2 off;
   *  - dropout, 0: the same counter-based draws give the same mask, and a product by 0 or
   *    1 / (1 - p) (plus one addition) rounds alike everywhere. */
  c[n++] = (op_case){
      "gemm", 3, {f_in(ld2, 1, 1), f_in(ld2, 2, 1), f_out(c4, 3)}, run_gemm, ref_gemm, 1e-5, 1e-5};
  c[n++] = (op_case){"gemm_bf16",
                     3,
                     {h16_in(ld2, 4), h16_in(ld2, 5), f_out(c4, 6)},
                     run_gemm_bf16,
                     ref_gemm_bf16,
                     1e-5,
                     1e-5};
  c[n++] = (op_case){"embedding_forward",
                     3,
                     {f_out(nq, 7), copy_in(tokens, sizeof(tokens)), f_in((size_t)V * QD, 8, 1)},
                     run_emb_f,
                     ref_emb_f,
                     0,
                     0};
  c[n++] = (op_case){"embedding_forward_bf16",
                     3,
                     {f_out(nq, 62), copy_in(tokens, sizeof(tokens)), h16_in((size_t)V * QD, 63)},
                     run_emb_f16,
                     ref_emb_f16,
                     0,
                     0};
  {
    float *x = randn(ROUND_N, 64, 100.0f);
    const uint32_t special[] = {0x3f808000u, 0x3f818000u, 0x7fc00001u, 0xffa00000u,
                                0x7f800000u, 0xff800000u, 0x7f7fffffu, 0x00000001u};
    for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
      memcpy(&x[i], &special[i], sizeof(float));
    c[n++] = (op_case){
        "bf16_round",
        2,
        {h16_out(ROUND_N, 65), (buf){.kind = IN, .bytes = ROUND_N * sizeof(float), .host = x}},
        run_round,
        ref_round,
        0,
        0};
  }
  c[n++] = (op_case){"embedding_backward",
                     3,
                     {f_out((size_t)V * QD, 9), f_in(nq, 10, 1), copy_in(tokens, sizeof(tokens))},
                     run_emb_b,
                     ref_emb_b,
                     0,
                     1e-6};
  c[n++] = (op_case){"rmsnorm_forward",
                     4,
                     {f_out(nq, 11), f_out(N, 12), f_in(nq, 13, 2), f_in(QD, 14, 1)},
                     run_rms_f,
                     ref_rms_f,
                     0,
                     1e-5};
  c[n++] = (op_case){"rmsnorm_backward",
                     6,
                     {f_out(nq, 15),
                      f_out(QD, 16),
                      f_in(nq, 17, 1),
                      {.kind = IN, .bytes = nq * 4, .host = xn},
                      {.kind = IN, .bytes = QD * 4, .host = w},
                      {.kind = IN, .bytes = N * 4, .host = rstd}},
                     run_rms_b,
                     ref_rms_b,
                     0,
                     1e-5};
  c[n++] = (op_case){"rope_forward",
                     3,
                     {f_out(nq, 18), copy_in(cos_t, sizeof(cos_t)), copy_in(sin_t, sizeof(sin_t))},
                     run_rope_f,
                     ref_rope_f,
                     0,
                     1e-6};
  c[n++] = (op_case){"rope_backward",
                     3,
                     {f_out(nq, 19), copy_in(cos_t, sizeof(cos_t)), copy_in(sin_t, sizeof(sin_t))},
                     run_rope_b,
                     ref_rope_b,
                     0,
                     1e-6};
  c[n++] =
      (op_case){"attention_forward",
                5,
                {f_out(nq, 20), f_out(natt, 21), f_in(nq, 22, 1), f_in(nk, 23, 1), f_in(nk, 24, 1)},
                run_att_f,
                ref_att_f,
                0,
                1e-4};
  c[n++] = (op_case){"attention_backward",
                     9,
                     {f_out(nq, 25), f_out(nk, 26), f_out(nk, 27), scratch, f_in(nq, 28, 1),
                      copy_in(att_probs, natt * sizeof(float)), f_in(nq, 22, 1), f_in(nk, 23, 1),
                      f_in(nk, 24, 1)},
                     run_att_b,
                     ref_att_b,
                     0,
                     1e-4};
  const size_t n_dec_scratch = (size_t)omp_get_max_threads() * (H / KV) * T * sizeof(float);
  c[n++] = (op_case){"attention_decode",
                     7,
                     {f_out((size_t)NDEC * QD, 60), f_in((size_t)NDEC * QD, 61, 1), f_in(nk, 23, 1),
                      f_in(nk, 24, 1), copy_in(dec_seq, sizeof(dec_seq)),
                      copy_in(dec_pos, sizeof(dec_pos)),
                      (buf){.kind = IN, .bytes = n_dec_scratch, .host = calloc(n_dec_scratch, 1)}},
                     run_att_d,
                     ref_att_d,
                     0,
                     1e-4};
  c[n++] = (op_case){"swiglu_forward",
                     3,
                     {f_out(FF, 29), f_in(FF, 30, 3), f_in(FF, 31, 1)},
                     run_swiglu_f,
                     ref_swiglu_f,
                     0,
                     1e-5};
  c[n++] =
      (op_case){"swiglu_backward",
                5,
                {f_out(FF, 32), f_out(FF, 33), f_in(FF, 34, 1), f_in(FF, 30, 3), f_in(FF, 31, 1)},
                run_swiglu_b,
                ref_swiglu_b,
                0,
                1e-5};
  c[n++] = (op_case){"crossentropy_forward",
                     5,
                     {{.kind = HOST_OUT,
                       .bytes = sizeof(double),
                       .host = calloc(1, sizeof(double)),
                       .is_double = 1},
                      {.kind = HOST_OUT, .bytes = sizeof(int), .host = calloc(1, sizeof(int))},
                      f_in((size_t)N * V, 35, 3),
                      copy_in(targets, sizeof(targets)),
                      f_in(N, 36, 1)},
                     run_ce_f,
                     ref_ce_f,
                     0,
                     1e-5};
  c[n++] = (op_case){"crossentropy_backward",
                     3,
                     {f_out((size_t)N * V, 35), copy_in(targets, sizeof(targets)), f_in(N, 36, 1)},
                     run_ce_b,
                     ref_ce_b,
                     0,
                     1e-5};
  uint64_t keys[N];
  for (int i = 0; i < N; i++) keys[i] = rng_bits(19, 62, i, 0);
  c[n++] = (op_case){"dropout_rows (set, add)",
                     4,
                     {f_out((size_t)N * DROP_IN, 43), f_out((size_t)N * DROP_IN, 44),
                      f_in((size_t)N * DROP_IN, 45, 1), copy_in(keys, sizeof(keys))},
                     run_drop,
                     ref_drop,
                     0,
                     0};
  for (int i = 0; i < N; i++)
    if (targets[i] >= 0) head_rows[n_head_rows++] = i;
  c[n++] = (op_case){"rows_gather, rows_scatter",
                     4,
                     {f_out((size_t)n_head_rows * GATHER_C, 52), f_out((size_t)N * GATHER_C, 53),
                      f_in((size_t)N * GATHER_C, 54, 1), copy_in(head_rows, sizeof(head_rows))},
                     run_rows,
                     ref_rows,
                     0,
                     0};
  c[n++] = (op_case){"svd_topk_right (2 shapes)",
                     6,
                     {f_out(SK1 * SN1, 46), f_out(SK1, 47), f_out(SK2 * SN2, 48), f_out(SK2, 49),
                      f_in(SM1 * SN1, 50, 1), f_in(SM2 * SN2, 51, 1)},
                     run_svd,
                     ref_svd,
                     0,
                     1e-4};
  c[n++] = (op_case){"adamw_update",
                     4,
                     {f_out(nq, 37),
                      f_out(nq, 38),
                      {.kind = OUT, .bytes = nq * 4, .host = v_moment},
                      f_in(nq, 39, 1)},
                     run_adamw,
                     ref_adamw,
                     0,
                     1e-5};
  return n;
}

static void cases_free(op_case *c, int n) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < c[i].n; j++) free(c[i].b[j].host);
}

/* Runs case c on backend be: its arguments uploaded (HOST_OUT ones on the host), the op, the
 * outputs downloaded into out[j] (malloc'd; NULL for inputs). Returns the first failing status. */
static int case_run(const backend_ops *be, const op_case *c, void **out) {
  void *p[MAX_BUFS] = {0};
  int rc = GORP_OK;
  for (int j = 0; j < c->n; j++) {
    const buf *b = &c->b[j];
    out[j] = b->kind == IN ? NULL : malloc(b->bytes);
    if (b->kind == HOST_OUT) {
      memcpy(out[j], b->host, b->bytes);
      p[j] = out[j];
    } else if (!rc && !(rc = be->alloc(&p[j], b->bytes))) {
      rc = be->upload(p[j], b->host, b->bytes);
    }
  }
  if (!rc) rc = c->run(be, p);
  for (int j = 0; j < c->n; j++) {
    if (c->b[j].kind == OUT && !rc) rc = be->download(out[j], p[j], c->b[j].bytes);
    if (c->b[j].kind != HOST_OUT) be->free(p[j]);
  }
  return rc;
}

/* The reference on host copies: outputs in out[j] as case_run gives them. */
static void case_ref(const op_case *c, void **out) {
  void *p[MAX_BUFS];
  for (int j = 0; j < c->n; j++) {
    out[j] = malloc(c->b[j].bytes);
    memcpy(out[j], c->b[j].host, c->b[j].bytes);
    p[j] = out[j];
  }
  c->ref(p);
  for (int j = 0; j < c->n; j++)
    if (c->b[j].kind == IN) free(out[j]), out[j] = NULL;
}

/* Largest |got - want| over the largest |want| of each output of c, the worst output's. */
static double case_diff(const op_case *c, void **got, void **want) {
  double worst = 0.0;
  for (int j = 0; j < c->n; j++) {
    const buf *b = &c->b[j];
    if (b->kind == IN) continue;
    double diff = 0.0, big = 0.0;
    if (b->is_bf16) {
      diff = memcmp(got[j], want[j], b->bytes) ? INFINITY : 0.0; /* the same rounding */
      big = 1.0;
    } else if (b->is_double) {
      diff = fabs(*(double *)got[j] - *(double *)want[j]);
      big = fabs(*(double *)want[j]);
    } else if (b->bytes == sizeof(int) && b->kind == HOST_OUT) {
      diff = abs(*(int *)got[j] - *(int *)want[j]) ? INFINITY : 0.0; /* a count: exact */
    } else {
      const float *g = got[j], *w = want[j];
      for (size_t i = 0; i < b->bytes / sizeof(float); i++) {
        diff = fmax(diff, isnan(g[i]) ? INFINITY : fabs((double)g[i] - w[i]));
        big = fmax(big, fabs((double)w[i]));
      }
    }
    worst = fmax(worst, big > 0 ? diff / big : diff);
  }
  return worst;
}

static void outs_free(const op_case *c, void **o) {
  for (int j = 0; j < c->n; j++) free(o[j]);
}

/* The memory ops: a round trip through the backend and a zeroed buffer read back. */
static void check_memory(const backend_ops *be) {
  enum { M = 1000 };
  float *x = randn(M, 50, 1.0f), back[M], zeros[M];
  void *d = NULL;
  int rc = be->alloc(&d, sizeof(back));
  if (!rc) rc = be->download(zeros, d, sizeof(zeros));
  int all_zero = !rc;
  for (int i = 0; i < M && all_zero; i++) all_zero = zeros[i] == 0.0f;
  CHECK(all_zero, "%s: alloc gives zeroed memory", be->name);
  if (!rc) rc = be->upload(d, x, sizeof(back));
  if (!rc) rc = be->download(back, d, sizeof(back));
  CHECK(!rc && !memcmp(back, x, sizeof(back)), "%s: upload then download gives the bytes back",
        be->name);
  void *d2 = NULL;
  if (!rc) rc = be->alloc(&d2, sizeof(back));
  if (!rc) rc = be->copy(d2, d, sizeof(back));
  memset(back, 0, sizeof(back));
  if (!rc) rc = be->download(back, d2, sizeof(back));
  CHECK(!rc && !memcmp(back, x, sizeof(back)), "%s: copy within the backend keeps the bytes",
        be->name);
  be->free(d2);
  if (!rc) rc = be->zero(d, sizeof(back));
  if (!rc) rc = be->download(zeros, d, sizeof(zeros));
  all_zero = !rc;
  for (int i = 0; i < M && all_zero; i++) all_zero = zeros[i] == 0.0f;
  CHECK(all_zero, "%s: zero clears the buffer", be->name);
  be->free(d);
  free(x);
}

/* No entry of the table is NULL (a backend that lacks an op must not open); 1 when so. */
static int check_complete(const backend_ops *be) {
  const void *const fields[] = {(const void *)be->gemm,
                                (const void *)be->alloc,
                                (const void *)be->free,
                                (const void *)be->upload,
                                (const void *)be->download,
                                (const void *)be->copy,
                                (const void *)be->zero,
                                (const void *)be->gemm_bf16,
                                (const void *)be->embedding_forward,
                                (const void *)be->embedding_forward_bf16,
                                (const void *)be->bf16_round,
                                (const void *)be->embedding_backward,
                                (const void *)be->rmsnorm_forward,
                                (const void *)be->rmsnorm_backward,
                                (const void *)be->rope_forward,
                                (const void *)be->rope_backward,
                                (const void *)be->attention_forward,
                                (const void *)be->attention_backward,
                                (const void *)be->attention_decode,
                                (const void *)be->swiglu_forward,
                                (const void *)be->swiglu_backward,
                                (const void *)be->crossentropy_forward,
                                (const void *)be->crossentropy_backward,
                                (const void *)be->dropout_rows,
                                (const void *)be->svd_topk_right,
                                (const void *)be->rows_gather,
                                (const void *)be->rows_scatter,
                                (const void *)be->adamw_update};
  int missing = -1;
  for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
    if (!fields[i] && missing < 0) missing = (int)i;
  CHECK(missing < 0, "%s: table entry %d is NULL", be->name, missing);
  return missing < 0;
}

/* The CPU table against its references. */
static void check_cpu(const backend_ops *cpu, op_case *c, int n) {
  if (!check_complete(cpu)) return;
  check_memory(cpu);
  for (int i = 0; i < n; i++) {
    void *got[MAX_BUFS], *want[MAX_BUFS];
    const int rc = case_run(cpu, &c[i], got);
    case_ref(&c[i], want);
    const double e = case_diff(&c[i], got, want);
    CHECK(!rc && e <= c[i].cpu_tol, "cpu %s: status %d, %.2e of the largest value (allowed %.0e)",
          c[i].name, rc, e, c[i].cpu_tol);
    printf("cpu  %-26s %.2e (allowed %.0e, %s)\n", c[i].name, e, c[i].cpu_tol,
           c[i].cpu_tol ? "double reference" : "the CPU function, bit for bit");
    outs_free(&c[i], got), outs_free(&c[i], want);
  }
}

/* Backend be against the CPU table. */
static void check_backend(const backend_ops *be, const backend_ops *cpu, op_case *c, int n) {
  if (!check_complete(be)) return;
  check_memory(be);
  for (int i = 0; i < n; i++) {
    void *got[MAX_BUFS], *want[MAX_BUFS];
    const int rc = case_run(be, &c[i], got);
    CHECK(!case_run(cpu, &c[i], want), "cpu %s", c[i].name);
    const double e = rc ? INFINITY : case_diff(&c[i], got, want);
    CHECK(!rc && e <= c[i].tol, "%s %s: status %d, %.2e of the largest value (allowed %.0e)",
          be->name, c[i].name, rc, e, c[i].tol);
    printf("%-4s %-26s %.2e (allowed %.0e)\n", be->name, c[i].name, e, c[i].tol);
    outs_free(&c[i], got), outs_free(&c[i], want);
  }
}

/* Opens backend name; on failure *why holds gorp's message (malloc'd). */
static const backend_ops *open_backend(const char *name, char **why) {
  capture_begin();
  const int rc = backend_select(name);
  *why = capture_end();
  return rc ? NULL : backend_get();
}

int main(int argc, char **argv) {
  for (int i = 0; i < N; i++) {
    tokens[i] = (int)(rng_uniform(19, 60, i, 0) * 23) % 23 * 13 % V; /* 23 distinct, repeated */
    targets[i] = i % 7 == 3 ? -1 : (int)(rng_uniform(19, 61, i, 0) * V) % V;
  }
  rope_tables(cos_t, sin_t, 5, T, D, 10000.0f);
  const size_t natt = (size_t)B * H * T * T, nq = (size_t)N * QD, nk = (size_t)N * KD;
  att_probs = malloc(natt * sizeof(float));
  { /* attention_backward reads the probabilities its forward saved */
    float *q = randn(nq, 22, 1), *k = randn(nk, 23, 1), *v = randn(nk, 24, 1), *o = randn(nq, 0, 1);
    if (attention_forward(o, att_probs, q, k, v, B, T, H, KV, D)) return 1;
    free(q), free(k), free(v), free(o);
  }
  op_case c[23];
  const int n = cases_make(c);
  if (backend_select("cpu")) return 1;
  const backend_ops *cpu = backend_get(); /* a static table: stays valid after another select */
  int skipped = 0;
  if (argc < 2) check_cpu(cpu, c, n);
  const char *others[] = {argc >= 2 ? argv[1] : "cuda"};
  for (int i = 0; i < 1; i++) {
    char *why;
    const backend_ops *be = open_backend(others[i], &why);
    if (be) {
      check_backend(be, cpu, c, n);
    } else {
      printf("SKIP %s: %.*s\n", others[i], (int)strcspn(why, "\n"), why);
      skipped = 1;
    }
    free(why);
    if (backend_select("cpu")) return 1;
  }
  cases_free(c, n);
  free(att_probs);
  const int rc = tests_finish();
  return argc >= 2 && skipped && !rc ? 77 : rc;
}
