/* The GEMM floor of one training step: every matrix product that gorp's step makes (model.c's
 * forward and backward of the layer projections and the LM head) plus its attention ops (their
 * products, and the causal softmax between them: a few percent of attention's time), called
 * through gorp's own backend (backend_get()->gemm: the same OpenMP slabs of single-threaded
 * OpenBLAS calls) and ops.c's attention_forward/backward, back to back on hot buffers, with none
 * of the step's other work (norms, RoPE, SwiGLU, loss, AdamW, the copies between them).
 * Its time is what a step would take if everything but the products were free: the fastest step
 * gorp's code could reach with this BLAS, and the largest ratio to PyTorch it could show.
 *   bench_gemm_floor HIDDEN LAYERS HEADS KV_HEADS INTER VOCAB BATCH SEQ REPS
 * prints one line: gemm-floor ... best_s=.. mean_s=.. gflop=.. (one untimed pass first).
 * Multi-head and grouped-query shapes as model.c; no LoRA. Built and run by bench/bench_train.py
 * against the libraries of the gorp it times. Not for: correctness (tests/ref compare gorp's
 * numbers with PyTorch), or timing gorp's step (gorp fit --time does). */
#include "gorp/backend.h"
#include "gorp/err.h"
#include "gorp/ops.h"
#include "gorp/proc.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct shape {
  int C, L, H, KV, D, F, V, B, T;
} shape;

/* Per layer and for the head, the forward product out (N, out) = inp (N, in) W^T and the two
 * backward ones (dinp = dout W, dW += dout^T inp), as ops.c's matmul_* make them. */
static int linear_fwd(const backend_ops *be, float *out, const float *inp, const float *w, int N,
                      int in, int out_n, float beta) {
  return be->gemm(0, 1, N, out_n, in, 1.0f, inp, in, w, in, beta, out, out_n);
}

static int linear_bwd(const backend_ops *be, float *dinp, float *dw, const float *dout,
                      const float *inp, const float *w, int N, int in, int out_n, float beta) {
  GORP_CALL(be->gemm(0, 0, N, in, out_n, 1.0f, dout, out_n, w, in, beta, dinp, in));
  return be->gemm(1, 0, out_n, in, N, 1.0f, dout, out_n, inp, in, 1.0f, dw, in);
}

/* One step's products on buffers big enough for every role (values do not matter for time); the
 * first failing product's status. */
static int step_products(const backend_ops *be, const shape *s, float *act, float *act2, float *out,
                         float *w, float *dw, float *att, float *scratch, int n_scratch) {
  const int N = s->B * s->T, C = s->C, F = s->F, QD = s->H * s->D, KD = s->KV * s->D;
  for (int l = 0; l < s->L; l++) {
    GORP_CALL(linear_fwd(be, out, act, w, N, C, QD, 0.0f)); /* q */
    GORP_CALL(linear_fwd(be, out, act, w, N, C, KD, 0.0f)); /* k */
    GORP_CALL(linear_fwd(be, out, act, w, N, C, KD, 0.0f)); /* v */
    GORP_CALL(attention_forward(act2, att, act, act, act, s->B, s->T, s->H, s->KV, s->D));
    GORP_CALL(linear_fwd(be, out, act2, w, N, QD, C, 1.0f)); /* o (+ residual) */
    GORP_CALL(linear_fwd(be, out, act, w, N, C, F, 0.0f));   /* gate */
    GORP_CALL(linear_fwd(be, out, act, w, N, C, F, 0.0f));   /* up */
    GORP_CALL(linear_fwd(be, out, act2, w, N, F, C, 1.0f));  /* down (+ residual) */
  }
  GORP_CALL(linear_fwd(be, out, act, w, N, C, s->V, 0.0f)); /* head */
  GORP_CALL(linear_bwd(be, act2, dw, out, act, w, N, C, s->V, 0.0f));
  for (int l = 0; l < s->L; l++) {
    GORP_CALL(linear_bwd(be, out, dw, act, act2, w, N, F, C, 0.0f));  /* down */
    GORP_CALL(linear_bwd(be, act2, dw, out, act, w, N, C, F, 0.0f));  /* gate */
    GORP_CALL(linear_bwd(be, act2, dw, out, act, w, N, C, F, 1.0f));  /* up */
    GORP_CALL(linear_bwd(be, out, dw, act, act2, w, N, QD, C, 0.0f)); /* o */
    GORP_CALL(attention_backward(act2, out, out, scratch, n_scratch, act, att, act, act, act, s->B,
                                 s->T, s->H, s->KV, s->D));
    GORP_CALL(linear_bwd(be, act2, dw, out, act, w, N, C, QD, 0.0f)); /* q */
    GORP_CALL(linear_bwd(be, act2, dw, out, act, w, N, C, KD, 1.0f)); /* k */
    GORP_CALL(linear_bwd(be, act2, dw, out, act, w, N, C, KD, 1.0f)); /* v */
  }
  return GORP_OK;
}

/* FLOPs of the products above, the attention ones with only the causal half counted (the same
 * formula as bench_train.py's GFLOP/step). */
static double step_flops(const shape *s) {
  const double N = (double)s->B * s->T, C = s->C, F = s->F, QD = (double)s->H * s->D,
               KD = (double)s->KV * s->D;
  const double per_layer = C * QD * 2 + C * KD * 2 + 3 * C * F;
  return 6 * N * (s->L * per_layer + C * s->V) + 6.0 * s->L * s->B * (double)s->T * s->T * QD;
}

int main(int argc, char **argv) {
  backend_blas_core_init(argv); /* gorp's own BLAS kernels (backend.h) */
  if (argc != 10) {
    fprintf(stderr, "usage: %s HIDDEN LAYERS HEADS KV_HEADS INTER VOCAB BATCH SEQ REPS\n", argv[0]);
    return 64;
  }
  int v[9];
  for (int i = 0; i < 9; i++) {
    v[i] = atoi(argv[i + 1]);
    if (v[i] < 1) {
      fprintf(stderr, "%s: argument %d (%s) must be a positive integer\n", argv[0], i + 1,
              argv[i + 1]);
      return 64;
    }
  }
  shape s = {v[0], v[1], v[2], v[3], v[0] / v[2], v[4], v[5], v[6], v[7]};
  const int reps = v[8];
  if (s.C % s.H || s.H % s.KV) {
    fprintf(stderr, "%s: HIDDEN must be a multiple of HEADS and HEADS of KV_HEADS\n", argv[0]);
    return 64;
  }
  backend_threads_init(1);
  const backend_ops *be = backend_get();
  const size_t N = (size_t)s.B * s.T, wide = (size_t)(s.F > s.V ? s.F : s.V),
               big = wide > (size_t)s.C ? wide : (size_t)s.C;
  const int n_scratch = omp_get_max_threads();
  const size_t n_act = N * big, n_w = big * s.C, n_att = (size_t)s.B * s.H * s.T * s.T,
               n_scr = (size_t)n_scratch * s.T * s.T;
  float *act = calloc(n_act, sizeof(float)), *act2 = calloc(n_act, sizeof(float)),
        *out = calloc(n_act, sizeof(float)), *w = calloc(n_w, sizeof(float)),
        *dw = calloc(n_w, sizeof(float)), *att = calloc(n_att, sizeof(float)),
        *scratch = calloc(n_scr, sizeof(float));
  if (!act || !act2 || !out || !w || !dw || !att || !scratch) {
    fprintf(stderr, "%s: out of memory for the step's buffers\n", argv[0]);
    return 4;
  }
  for (size_t i = 0; i < n_act; i++) act[i] = (float)(i % 251) * 1e-3f;
  for (size_t i = 0; i < n_w; i++) w[i] = (float)(i % 241) * 1e-3f;
  int rc = step_products(be, &s, act, act2, out, w, dw, att, scratch, n_scratch);
  double best = 1e30, total = 0.0;
  for (int r = 0; r < reps && !rc; r++) {
    const double t0 = proc_now_s();
    rc = step_products(be, &s, act, act2, out, w, dw, att, scratch, n_scratch);
    const double dt = proc_now_s() - t0;
    total += dt;
    best = dt < best ? dt : best;
  }
  if (!rc)
    printf("gemm-floor hidden=%d layers=%d heads=%d kv=%d inter=%d vocab=%d batch=%d seq=%d "
           "threads=%d reps=%d best_s=%.6f mean_s=%.6f gflop=%.3f\n",
           s.C, s.L, s.H, s.KV, s.F, s.V, s.B, s.T, omp_get_max_threads(), reps, best, total / reps,
           step_flops(&s) / 1e9);
  free(act);
  free(act2);
  free(out);
  free(w);
  free(dw);
  free(att);
  free(scratch);
  return rc;
}
