/* The bf16 GEMM (bf16.h) against gorp's fp32 GEMM (backend_get()->gemm: OpenMP slabs of
 * single-threaded OpenBLAS SGEMM) on the model's linear-layer shapes: the forward product
 * Y (M, out) = X (M, in) W^T and the backward dX (M, in) = dY (M, out) W, M = 8 x 256 tokens, for
 * SmolLM2-135M (576 -> 1536, 1536 -> 576, 576 -> 49152) and LLaMA-2-7B (4096 -> 11008,
 * 4096 -> 4096): sgemm on the fp32 weight against bf16's two paths, oneDNN with its primitive
 * cached and the sgemm fallback (the weight widened block by block), the activations' rounding
 * included, alternating within each round so that all meet the same load. Then both bf16 paths
 * by rows M (1 to 256; forward, SmolLM2's 576 -> 1536 and LLaMA's 4096 -> 4096): where
 * BF16_PATH_SPLIT's switch belongs. Then what the cache saves: a forward product on SmolLM2's
 * shapes (M = 1, and 2048 but for the head) on the cached primitive against a new cache each
 * call (a new oneDNN primitive, with and without oneDNN's own primitive cache), on the first
 * thread count.
 *   bench_bf16_gemm THREADS_LIST ROUNDS      e.g. bench_bf16_gemm 1,2 3
 * prints Markdown tables: best GFLOP/s (or ms) over ROUNDS (one untimed call of each first),
 * GFLOP/s = 2 M in out / seconds / 1e9, wall clock; the oneDNN kernel that ran; the CPU model.
 * ONEDNN_VERBOSE=1 in the environment shows oneDNN's own line per call (the ISA in the kernel's
 * name). Not for: correctness (tests/unit/test_bf16.c), or a training step's time. */
#include "gorp/backend.h"
#include "gorp/bf16.h"
#include "gorp/err.h"

#include <oneapi/dnnl/dnnl.h>

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

typedef struct shape {
  const char *model;
  int in, out;
} shape;

static const shape shapes[] = {{"SmolLM2-135M", 576, 1536},
                               {"SmolLM2-135M", 1536, 576},
                               {"SmolLM2-135M", 576, 49152},
                               {"LLaMA-2-7B", 4096, 11008},
                               {"LLaMA-2-7B", 4096, 4096}};
enum { N_SHAPES = sizeof(shapes) / sizeof(shapes[0]), M_TOKENS = 8 * 256 };

/* One product, fp32 (v = 0: backend_get()->gemm on w32) or bf16 (v > 0: bf16_gemm_xw on w16):
 * fwd Y = X W^T (n = out, k = in) or bwd dX = dY W (n = in, k = out); x (m, k), y (m, n). */
static int product(int v, int bwd, bf16_gemm_cache *cache, const shape *s, int m, const float *x,
                   const float *w32, const bf16 *w16, float *y) {
  const int n = bwd ? s->in : s->out, k = bwd ? s->out : s->in, tb = !bwd;
  const int ldw = s->in; /* W (out, in) */
  if (v == 0) return backend_get()->gemm(0, tb, m, n, k, 1.0f, x, k, w32, ldw, 0.0f, y, n);
  return bf16_gemm_xw(cache, 0, tb, m, n, k, 1.0f, x, k, w16, ldw, 0.0f, y, n);
}

/* Milliseconds of one forward bf16 product with m rows, best of rounds, alternating: ms[0] on the
 * cached primitive, ms[1] with a new cache (a new primitive, which oneDNN's own primitive cache
 * may still hand out without JIT-compiling it again), ms[2] the same with oneDNN's cache off. */
static int creation_ms(const shape *s, int m, int rounds, bf16_gemm_cache *cache, const float *x,
                       const bf16 *w16, float *y, double ms[3]) {
  int capacity;
  if (dnnl_get_primitive_cache_capacity(&capacity) != dnnl_success) return GORP_ELIB;
  ms[0] = ms[1] = ms[2] = 1e30;
  GORP_CALL(product(1, 0, cache, s, m, x, NULL, w16, y)); /* untimed */
  for (int r = 0; r < rounds; r++)
    for (int v = 0; v < 3; v++) {
      if (v == 2 && dnnl_set_primitive_cache_capacity(0) != dnnl_success) return GORP_ELIB;
      const double t0 = now_s();
      bf16_gemm_cache *c = cache;
      if (v > 0) GORP_CALL(bf16_gemm_create(&c, BF16_PATH_ONEDNN));
      const int rc = product(1, 0, c, s, m, x, NULL, w16, y);
      if (v > 0) bf16_gemm_free(c);
      const double dt = 1e3 * (now_s() - t0);
      if (v == 2 && dnnl_set_primitive_cache_capacity(capacity) != dnnl_success) return GORP_ELIB;
      GORP_CALL(rc);
      if (dt < ms[v]) ms[v] = dt;
    }
  return GORP_OK;
}

static void cpu_model(char *out, size_t n) {
  snprintf(out, n, "unknown CPU");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof(line), f))
    if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
      snprintf(out, n, "%s", strchr(line, ':') + 2);
      out[strcspn(out, "\n")] = '\0';
      break;
    }
  fclose(f);
}

int main(int argc, char **argv) {
  backend_blas_core_init(argv); /* gorp's own BLAS kernels (backend.h) */
  if (argc != 3) {
    fprintf(stderr, "usage: %s THREADS_LIST ROUNDS (e.g. 1,2 3)\n", argv[0]);
    return 64;
  }
  const int rounds = atoi(argv[2]);
  int threads[8], n_threads = 0;
  for (char *t = strtok(argv[1], ","); t && n_threads < 8; t = strtok(NULL, ","))
    threads[n_threads++] = atoi(t);
  if (rounds < 1 || n_threads < 1) {
    fprintf(stderr, "%s: THREADS_LIST needs >= 1 count and ROUNDS >= 1\n", argv[0]);
    return 64;
  }
  /* OpenBLAS's own pool off: every count below is OpenMP threads, as in gorp (backend.h) */
  backend_get()->set_gemm_threads(1);
  /* x, y (M, max width), W (largest out x in): big enough for every shape and direction */
  size_t max_x = 0, max_w = 0;
  for (int s = 0; s < N_SHAPES; s++) {
    const size_t wide = shapes[s].in > shapes[s].out ? shapes[s].in : shapes[s].out;
    const size_t nw = (size_t)shapes[s].in * shapes[s].out;
    if (M_TOKENS * wide > max_x) max_x = M_TOKENS * wide;
    if (nw > max_w) max_w = nw;
  }
  float *x = malloc(max_x * sizeof(float)), *y = malloc(max_x * sizeof(float)),
        *w32 = malloc(max_w * sizeof(float));
  bf16 *w16 = malloc(max_w * sizeof(bf16));
  if (!x || !y || !w32 || !w16) {
    fprintf(stderr, "%s: out of memory\n", argv[0]);
    return 4;
  }
  unsigned r = 12345u;
  for (size_t i = 0; i < max_x; i++) {
    r = r * 1664525u + 1013904223u;
    x[i] = (float)(r >> 8) / 16777216.0f - 0.5f;
  }
  for (size_t i = 0; i < max_w; i++) {
    r = r * 1664525u + 1013904223u;
    w32[i] = ((float)(r >> 8) / 16777216.0f - 0.5f) * 0.05f;
  }
  bf16_round(w16, w32, max_w);
  bf16_gemm_cache *cache, *wide, *autoc; /* oneDNN, the fallback, what gorp picks here */
  if (bf16_gemm_create(&cache, BF16_PATH_ONEDNN) || bf16_gemm_create(&wide, BF16_PATH_SGEMM) ||
      bf16_gemm_create(&autoc, BF16_PATH_AUTO))
    return 1;
  bf16_gemm_cache *caches[3] = {NULL, cache, wide};
  char cpu[256];
  cpu_model(cpu, sizeof(cpu));
  printf("CPU: %s; OpenBLAS kernels %s; gorp's bf16 path here: %s; M = %d tokens; best of %d "
         "rounds (GFLOP/s)\n\n",
         cpu, backend_blas_core(), bf16_path_name(bf16_gemm_path(autoc)), M_TOKENS, rounds);
  bf16_gemm_free(autoc);
  printf("| model | product (M x in -> out) | threads | sgemm | bf16 oneDNN | bf16 widened + sgemm "
         "| oneDNN / sgemm | widened / sgemm | oneDNN kernel |\n"
         "|---|---|---:|---:|---:|---:|---:|---:|---|\n");
  for (int s = 0; s < N_SHAPES; s++)
    for (int bwd = 0; bwd < 2; bwd++)
      for (int t = 0; t < n_threads; t++) {
        omp_set_num_threads(threads[t]);
        const shape *sh = &shapes[s];
        double best[3] = {1e30, 1e30, 1e30};
        for (int v = 0; v < 3; v++)
          if (product(v, bwd, caches[v], sh, M_TOKENS, x, w32, w16, y)) return 1; /* untimed */
        for (int k = 0; k < rounds; k++)
          for (int v = 0; v < 3; v++) {
            const double t0 = now_s();
            if (product(v, bwd, caches[v], sh, M_TOKENS, x, w32, w16, y)) return 1;
            const double dt = now_s() - t0;
            if (dt < best[v]) best[v] = dt;
          }
        const double gflop = 2.0 * M_TOKENS * sh->in * sh->out / 1e9;
        printf("| %s | %s %d x %d -> %d | %d | %.0f | %.0f | %.0f | %.2f | %.2f | %s |\n",
               sh->model, bwd ? "bwd dX = dY W:" : "fwd Y = X W^T:", M_TOKENS,
               bwd ? sh->out : sh->in, bwd ? sh->in : sh->out, threads[t], gflop / best[0],
               gflop / best[1], gflop / best[2], best[0] / best[1], best[0] / best[2],
               bf16_gemm_kernel(cache));
        fflush(stdout);
      }
  /* both bf16 paths by rows: where the split belongs */
  omp_set_num_threads(threads[0]);
  printf("\n| forward product, %d thread(s) | M | bf16 oneDNN (ms) | bf16 widened + sgemm (ms) | "
         "widened / oneDNN |\n|---|---:|---:|---:|---:|\n",
         threads[0]);
  const int by_rows[] = {0, 4};
  for (int i = 0; i < 2; i++)
    for (int m = 1; m <= 256; m *= 4) {
      const shape *sh = &shapes[by_rows[i]];
      double best[3] = {1e30, 1e30, 1e30};
      const int reps = m < 64 ? 20 * rounds : rounds;
      for (int v = 1; v < 3; v++)
        if (product(v, 0, caches[v], sh, m, x, w32, w16, y)) return 1; /* untimed */
      for (int k = 0; k < reps; k++)
        for (int v = 1; v < 3; v++) {
          const double t0 = now_s();
          if (product(v, 0, caches[v], sh, m, x, w32, w16, y)) return 1;
          const double dt = now_s() - t0;
          if (dt < best[v]) best[v] = dt;
        }
      printf("| %d -> %d | %d | %.3f | %.3f | %.2f |\n", sh->in, sh->out, m, 1e3 * best[1],
             1e3 * best[2], best[2] / best[1]);
    }
  /* what the cache saves: a forward product on SmolLM2's shapes, cached vs a new primitive */
  omp_set_num_threads(threads[0]);
  printf("\n| forward product, %d thread(s) | M | cached primitive (ms) | new primitive (ms) | new "
         "primitive, oneDNN's cache off (ms) |\n|---|---:|---:|---:|---:|\n",
         threads[0]);
  for (int s = 0; s < 3; s++)
    for (int m = 1; m <= M_TOKENS; m *= M_TOKENS) {
      /* M = 1 takes well under a millisecond: 20 times the rounds; the head at M = 2048 (seconds
       * per product, on a shape like the others) is left out */
      if (m > 1 && s == 2) continue;
      double ms[3];
      if (creation_ms(&shapes[s], m, m == 1 ? 20 * rounds : rounds, cache, x, w16, y, ms)) return 1;
      printf("| %d -> %d | %d | %.3f | %.3f | %.3f |\n", shapes[s].in, shapes[s].out, m, ms[0],
             ms[1], ms[2]);
    }
  bf16_gemm_free(cache);
  bf16_gemm_free(wide);
  free(x), free(y), free(w32), free(w16);
  return 0;
}
