/* The rank-k projected Adam (optim_lowrank.h).
 * Always: its state is O(m k + k n), counted on the real allocation for LLaMA-2-7B's gate_proj
 * (11008 x 4096, k = 8) and down_proj (4096 x 11008), and never the m x n a plain Adam holds.
 * Driver mode for tests/ref/test_lowrank_vs_numpy.py: with GORP_LOWRANK_IN and GORP_LOWRANK_OUT
 * set, reads a case (int32 m, n, k, right, gap, steps; float32 lr, scale, beta1, beta2, eps; W0 (m,
 * n); steps gradients (m, n)) and writes W after every step (steps x m x n float32). */
#include "gorp/optim_lowrank.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

static int drive(const char *in_path, const char *out_path) {
  FILE *in = fopen(in_path, "rb"), *out = fopen(out_path, "wb");
  if (!in || !out) return 1;
  int h[6];
  float p[5];
  if (fread(h, sizeof(int), 6, in) != 6 || fread(p, sizeof(float), 5, in) != 5) return 1;
  const int m = h[0], n = h[1], k = h[2], right = h[3], gap = h[4], steps = h[5];
  float *W = malloc((size_t)m * n * sizeof(float)), *G = malloc((size_t)m * n * sizeof(float));
  if (fread(W, sizeof(float), (size_t)m * n, in) != (size_t)m * n) return 1;
  lowrank_adam o;
  linalg_ws w = {0};
  if (lowrank_init(&o, m, n, k, right, gap, p[0], p[1], p[2], p[3], p[4], 0.0f, SVD_EXACT, NULL) ||
      lowrank_reserve(&o, &w))
    return 1;
  for (int s = 0; s < steps; s++) {
    if (fread(G, sizeof(float), (size_t)m * n, in) != (size_t)m * n) return 1;
    if (lowrank_step(&o, W, G, NULL, &w)) return 1;
    fwrite(W, sizeof(float), (size_t)m * n, out);
  }
  lowrank_free(&o);
  linalg_ws_free(&w);
  free(W);
  free(G);
  fclose(in);
  return fclose(out) != 0;
}

/* The optimizer's one allocation for an m x n weight, against m k + k n and m n. */
static int check_state(int m, int n, int k, int right) {
  lowrank_adam o;
  if (lowrank_init(&o, m, n, k, right, 10, 1e-3f, 1.0f, 0.9f, 0.999f, 1e-8f, 0.0f, SVD_EXACT, NULL))
    return 0;
  const size_t want = right ? (size_t)k * n + 4 * (size_t)m * k : (size_t)m * k + 4 * (size_t)k * n;
  const size_t bytes = malloc_usable_size(o.proj);
  const int ok = o.state_floats == want && bytes >= want * sizeof(float) &&
                 bytes < want * sizeof(float) + 4096 && bytes * 50 < (size_t)m * n * sizeof(float);
  printf("%s %5d x %-5d k=%d: optimizer allocation %zu bytes = %zu floats (m k + k n terms), "
         "%.2f%% of one m x n matrix\n",
         ok ? "PASS" : "FAIL", m, n, k, bytes, o.state_floats,
         100.0 * (double)bytes / ((double)m * n * sizeof(float)));
  lowrank_free(&o);
  return ok;
}

int main(void) {
  const char *in = getenv("GORP_LOWRANK_IN"), *out = getenv("GORP_LOWRANK_OUT");
  if (in && out) return drive(in, out);
  int pass = 0, fail = 0;
  check_state(11008, 4096, 8, 1) ? pass++ : fail++; /* gate_proj: right vectors */
  check_state(4096, 11008, 8, 0) ? pass++ : fail++; /* down_proj: left vectors */
  lowrank_adam o;
  const int refused =
      lowrank_init(&o, 6, 4, 5, 1, 10, 1e-3f, 1, 0.9f, 0.999f, 1e-8f, 0, SVD_EXACT, NULL) != 0;
  printf("%s rank 5 on a 6 x 4 weight is refused\n", refused ? "PASS" : "FAIL");
  refused ? pass++ : fail++;
  printf("%d passed, %d failed\n", pass, fail);
  return fail != 0;
}
