/* Activation bases (gorp.basis_source = activation): after a task, the basis of a protected
 * matrix equals the leading eigenvectors of its input covariance, computed here independently
 * (double precision, cyclic Jacobi) from the same layer inputs: the same count (the fewest
 * eigenvalues whose share reaches gorp.energy) and the same subspace (||S S^T - V V^T||_max
 * <= 1e-4). Checked for the q_proj LoRA A (input = attention norm output) and the down_proj
 * full-rank weight (input = the SwiGLU product) of layer 1. */
#include "gorp/config.h"
#include "testutil.h"
#include "gorp/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 4, T = 10, N = B * T };

/* Eigen-decomposition of the symmetric A (n, n) in place: eigenvalues on the diagonal, V (n, n)
 * eigenvectors as columns. */
static void jacobi(double *A, double *V, int n) {
  for (int i = 0; i < n * n; i++) V[i] = i % (n + 1) == 0;
  for (int sweep = 0; sweep < 100; sweep++) {
    double off = 0.0;
    for (int p = 0; p < n; p++)
      for (int q = p + 1; q < n; q++) off += A[p * n + q] * A[p * n + q];
    if (off < 1e-26) break;
    for (int p = 0; p < n; p++)
      for (int q = p + 1; q < n; q++) {
        if (fabs(A[p * n + q]) < 1e-300) continue;
        const double th = (A[q * n + q] - A[p * n + p]) / (2 * A[p * n + q]);
        const double t = (th >= 0 ? 1 : -1) / (fabs(th) + sqrt(th * th + 1));
        const double c = 1 / sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < n; k++) {
          const double akp = A[k * n + p], akq = A[k * n + q];
          A[k * n + p] = c * akp - s * akq;
          A[k * n + q] = s * akp + c * akq;
        }
        for (int k = 0; k < n; k++) {
          const double apk = A[p * n + k], aqk = A[q * n + k];
          A[p * n + k] = c * apk - s * aqk;
          A[q * n + k] = s * apk + c * aqk;
        }
        for (int k = 0; k < n; k++) {
          const double vkp = V[k * n + p], vkq = V[k * n + q];
          V[k * n + p] = c * vkp - s * vkq;
          V[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
}

/* Compares a basis with the covariance's leading eigenvectors; returns 1 when they agree. */
static int compare(const char *name, const gorp_space *s, const float *X, int n, float energy) {
  double *C = calloc((size_t)n * n, sizeof(double)), *V = calloc((size_t)n * n, sizeof(double));
  for (int r = 0; r < N; r++)
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) C[i * n + j] += (double)X[r * n + i] * X[r * n + j] / N;
  jacobi(C, V, n);
  int order[256];
  double total = 0.0;
  for (int i = 0; i < n; i++) order[i] = i, total += C[i * n + i];
  for (int i = 0; i < n; i++) /* eigenvalues descending */
    for (int j = i + 1; j < n; j++)
      if (C[order[j] * n + order[j]] > C[order[i] * n + order[i]]) {
        int tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
      }
  int want = 0;
  for (double acc = 0.0; want < n && acc < energy * total; want++)
    acc += C[order[want] * n + order[want]];
  double worst = 0.0;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      double ss = 0.0, vv = 0.0;
      for (int k = 0; k < s->r; k++) ss += (double)s->S[i * s->cap + k] * s->S[j * s->cap + k];
      for (int k = 0; k < want; k++) vv += V[i * n + order[k]] * V[j * n + order[k]];
      worst = fmax(worst, fabs(ss - vv));
    }
  const int ok = s->r == want && worst <= 1e-4 && want > 0 && want < n;
  printf("%s %-36s %d of %d eigenvectors at energy %.3f (gorp: %d), |S S^T - V V^T| %.1e\n",
         ok ? "PASS" : "FAIL", name, want, n, energy, s->r, worst);
  free(C);
  free(V);
  return ok;
}

int main(void) {
  gorp_config c;
  if (config_from_text(&c,
                       "[run]\nmethod = gorp\n[data]\nroot = /r\ninstructions = /i\ntasks = a\n"
                       "[lora]\ntargets = q\n[full]\ntargets = down\noptimizer = adam\n"
                       "[gorp]\naxis = input\nbasis_source = activation\nenergy = 0.9\n",
                       NULL, 0))
    return 1;
  const model_config mc = {.vocab_size = 40,
                           .hidden_size = 16,
                           .intermediate_size = 24,
                           .num_layers = 2,
                           .num_heads = 2,
                           .num_kv_heads = 2,
                           .head_dim = 8,
                           .max_seq = 16,
                           .rms_eps = 1e-5f,
                           .rope_theta = 10000.0f};
  model m;
  model_create(&m, &mc);
  model_init_random(&m, 11, 0.3f, 0.3f);
  trainer tr;
  if (trainer_create(&tr, &m, &c, c.run.method, 1, NULL)) return 1;
  int tokens[N], lengths[B];
  for (int i = 0; i < N; i++) tokens[i] = (i * 13 + 5) % mc.vocab_size;
  for (int b = 0; b < B; b++) lengths[b] = T; /* every position real: the test needs no mask */
  trainer_observe(&tr, tokens, lengths, B, T);
  /* the same layer inputs, for the independent covariance */
  float *x_q = malloc(sizeof(float) * N * 16), *x_down = malloc(sizeof(float) * N * 24);
  memcpy(x_q, m.acts.ln1 + (size_t)1 * N * 16, sizeof(float) * N * 16);
  memcpy(x_down, m.acts.h + (size_t)1 * N * 24, sizeof(float) * N * 24);
  trainer_end_task(&tr, 0);
  int pass = 0, fail = 0;
  compare("layer 1 q_proj LoRA A (input axis 16)", &tr.lora_space[1 * LORA_N_TARGETS + LORA_Q], x_q,
          16, 0.9f)
      ? pass++
      : fail++;
  compare("layer 1 down_proj full-rank (axis 24)", &tr.full[1].space, x_down, 24, 0.9f) ? pass++
                                                                                        : fail++;
  free(x_q);
  free(x_down);
  trainer_free(&tr);
  model_free(&m);
  config_free(&c);
  printf("%d passed, %d failed\n", pass, fail);
  return fail != 0;
}
