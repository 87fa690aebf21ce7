/* The CUDA backend's element-wise ops and attention (backend.h): one __global__ kernel per op,
 * backward beside its forward (llm.c style: outputs first, a shape comment on every tensor), and
 * a host launcher per op with its ops-table signature (kernels_cuda.h) that checks the sizes and
 * the launch and returns GORP_OK or the error's code. Each computes what kernels.c's CPU function
 * of the same name computes: the same expressions in the same order per element, exp_fast
 * included, and nvcc's --fmad=false (CMakeLists.txt) rounds each multiply and add as the CPU build
 * does, so only the order of sums over a row differs. Sums over a row are fixed trees (no
 * atomics), so every op is deterministic. All work is issued on the default stream in call order;
 * a kernel's execution error surfaces at the next synchronizing call (download).
 * Not for: matrix products (cuBLAS, backend_cuda.c); speed (one simple, correct design each). */
#include "kernels_cuda.h"

#include "../exp_fast.h"
#include "gorp/bf16.h"
#include "gorp/rng.h"

#include <math.h>
#include <stdlib.h>

enum {
  THREADS = 256,       /* threads of a block, a multiple of WARP */
  WARP = 32,           /* lanes of a warp (the reductions' shuffles) */
  MAX_BLOCKS = 1 << 16 /* a grid-stride kernel's blocks: more elements loop */
};

/* A kernel launch rejected by the runtime (bad configuration, no device) is an error naming the
 * kernel; a fault during its execution is reported by the next synchronizing call. */
#define LAUNCH_CHECK(kernel)                                                                       \
  do {                                                                                             \
    cudaError_t gorp_kerr_ = cudaGetLastError();                                                   \
    if (gorp_kerr_ != cudaSuccess)                                                                 \
      GORP_ERR(GORP_ELIB, "CUDA kernel launch failed (%s): %s", cudaGetErrorString(gorp_kerr_),    \
               #kernel);                                                                           \
  } while (0)

/* Device memory the ops need between kernels (attention_backward's row sums, crossentropy's
 * per-row losses), grown on demand and kept for the module's life. cudaFree waits for the kernels
 * still using the old buffer. One buffer: ops must not overlap (the table says concurrent = 0). */
static void *workspace;
static size_t workspace_bytes;

static int workspace_get(void **p, size_t bytes) {
  if (bytes > workspace_bytes) {
    void *old = workspace;
    workspace = NULL;
    workspace_bytes = 0;
    if (old) CUDA_CALL(cudaFree(old));
    const cudaError_t e = cudaMalloc(&workspace, bytes);
    if (e != cudaSuccess) {
      workspace = NULL;
      (void)cudaGetLastError(); /* not a launch's error: keep it from the next LAUNCH_CHECK */
      GORP_ERR(e == cudaErrorMemoryAllocation ? GORP_EMEM : GORP_ELIB,
               "CUDA call failed (%s): cudaMalloc of a %zu-byte workspace", cudaGetErrorString(e),
               bytes);
    }
    workspace_bytes = bytes;
  }
  *p = workspace;
  return GORP_OK;
}

/* blocks of THREADS for a grid-stride loop over n elements */
static unsigned int grid_blocks(size_t n) {
  const size_t b = (n + THREADS - 1) / THREADS;
  return (unsigned int)(b < (size_t)MAX_BLOCKS ? b : (size_t)MAX_BLOCKS);
}

/* blocks of THREADS for one thread per column of C */
static unsigned int col_blocks(int C) {
  return (unsigned int)(((size_t)C + THREADS - 1) / THREADS);
}

/* Butterfly sums: every lane ends with the same bits (each pairwise add is commutative). */
template <typename T> __device__ static T warp_sum(T x) {
  for (int o = WARP / 2; o > 0; o /= 2) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

/* max as kernels.c's row_max takes it (a NaN never wins a comparison) */
__device__ static float warp_max(float x) {
  for (int o = WARP / 2; o > 0; o /= 2) {
    const float y = __shfl_xor_sync(0xffffffffu, x, o);
    x = y > x ? y : x;
  }
  return x;
}

/* The sum of x over the block, returned to every thread; all threads must call it. */
template <typename T> __device__ static T block_sum(T x) {
  __shared__ T part[WARP];
  const int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
  x = warp_sum(x);
  __syncthreads(); /* part may still be read by a previous call */
  if (lane == 0) part[warp] = x;
  __syncthreads();
  return warp_sum(lane < (int)(blockDim.x / WARP) ? part[lane] : (T)0);
}

/* The max of x over the block, returned to every thread; all threads must call it. */
__device__ static float block_max(float x) {
  __shared__ float part[WARP];
  const int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
  x = warp_max(x);
  __syncthreads();
  if (lane == 0) part[warp] = x;
  __syncthreads();
  return warp_max(lane < (int)(blockDim.x / WARP) ? part[lane] : -INFINITY);
}

/* ---- embedding ---- */

__global__ static void embedding_forward_kernel(float *out,        /* (N, C) */
                                                const int *tokens, /* (N) */
                                                const float *emb,  /* (V, C) */
                                                int N, int C) {
  const size_t n = (size_t)N * C;
  for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n;
       idx += (size_t)gridDim.x * blockDim.x) {
    const size_t i = idx / C, c = idx % C;
    out[idx] = emb[(size_t)tokens[i] * C + c];
  }
}

__global__ static void embedding_forward_bf16_kernel(float *out,          /* (N, C) */
                                                     const int *tokens,   /* (N) */
                                                     const uint16_t *emb, /* (V, C) bf16 */
                                                     int N, int C) {
  const size_t n = (size_t)N * C;
  for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n;
       idx += (size_t)gridDim.x * blockDim.x) {
    const size_t i = idx / C, c = idx % C;
    out[idx] = bf16_to_f32(emb[(size_t)tokens[i] * C + c]);
  }
}

/* One thread per column adds the rows in order, as the CPU does: repeated tokens sum in the same
 * order on every run (no atomics). */
__global__ static void embedding_backward_kernel(float *demb,       /* (V, C) */
                                                 const float *dout, /* (N, C) */
                                                 const int *tokens, /* (N) */
                                                 int N, int C) {
  const size_t c = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= (size_t)C) return;
  for (int i = 0; i < N; i++) demb[(size_t)tokens[i] * C + c] += dout[(size_t)i * C + c];
}

extern "C" int cuda_embedding_forward(float *out, const int *tokens, const float *emb, int N,
                                      int C) {
  GORP_CHECK(N >= 0 && C >= 0, GORP_EINPUT, "embedding_forward: bad sizes N=%d C=%d", N, C);
  if (N == 0 || C == 0) return GORP_OK;
  embedding_forward_kernel<<<grid_blocks((size_t)N * C), THREADS>>>(out, tokens, emb, N, C);
  LAUNCH_CHECK(embedding_forward_kernel);
  return GORP_OK;
}

extern "C" int cuda_embedding_forward_bf16(float *out, const int *tokens, const uint16_t *emb,
                                           int N, int C) {
  GORP_CHECK(N >= 0 && C >= 0, GORP_EINPUT, "embedding_forward_bf16: bad sizes N=%d C=%d", N, C);
  if (N == 0 || C == 0) return GORP_OK;
  embedding_forward_bf16_kernel<<<grid_blocks((size_t)N * C), THREADS>>>(out, tokens, emb, N, C);
  LAUNCH_CHECK(embedding_forward_bf16_kernel);
  return GORP_OK;
}

__global__ static void bf16_round_kernel(uint16_t *out,   /* (n) */
                                         const float *in, /* (n) */
                                         size_t n) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x)
    out[i] = bf16_from_f32(in[i]);
}

extern "C" int cuda_bf16_round(uint16_t *out, const float *in, size_t n) {
  if (n == 0) return GORP_OK;
  bf16_round_kernel<<<grid_blocks(n), THREADS>>>(out, in, n);
  LAUNCH_CHECK(bf16_round_kernel);
  return GORP_OK;
}

extern "C" int cuda_embedding_backward(float *demb, const float *dout, const int *tokens, int N,
                                       int C) {
  GORP_CHECK(N >= 0 && C >= 0, GORP_EINPUT, "embedding_backward: bad sizes N=%d C=%d", N, C);
  if (N == 0 || C == 0) return GORP_OK;
  embedding_backward_kernel<<<col_blocks(C), THREADS>>>(demb, dout, tokens, N, C);
  LAUNCH_CHECK(embedding_backward_kernel);
  return GORP_OK;
}

/* ---- rmsnorm: one block per row ---- */

__global__ static void rmsnorm_forward_kernel(float *out,       /* (N, C) */
                                              float *rstd,      /* (N) */
                                              const float *inp, /* (N, C) */
                                              const float *w,   /* (C) */
                                              int C, float eps) {
  const size_t i = blockIdx.x;
  const float *x = inp + i * C;
  float *y = out + i * C;
  double ss = 0.0;
  for (int c = threadIdx.x; c < C; c += blockDim.x) ss += (double)x[c] * x[c];
  ss = block_sum(ss);
  const float r = 1.0f / sqrtf((float)(ss / C) + eps);
  for (int c = threadIdx.x; c < C; c += blockDim.x) y[c] = w[c] * (x[c] * r);
  if (threadIdx.x == 0) rstd[i] = r;
}

/* dinp's rows; dw is rmsnorm_dw_kernel's */
__global__ static void rmsnorm_backward_kernel(float *dinp,       /* (N, C) */
                                               const float *dout, /* (N, C) */
                                               const float *inp,  /* (N, C) */
                                               const float *w,    /* (C) */
                                               const float *rstd, /* (N) */
                                               int C) {
  const size_t i = blockIdx.x;
  const float *x = inp + i * C, *dy = dout + i * C;
  float *dx = dinp + i * C;
  const float r = rstd[i];
  double dot = 0.0; /* sum_c w_c dy_c x_c */
  for (int c = threadIdx.x; c < C; c += blockDim.x) dot += (double)w[c] * dy[c] * x[c];
  dot = block_sum(dot);
  const float k = (float)(dot * r * r * r / C);
  for (int c = threadIdx.x; c < C; c += blockDim.x) dx[c] += r * w[c] * dy[c] - x[c] * k;
}

/* One thread per column adds the rows in order (the CPU's order: the same sum, bit for bit). */
__global__ static void rmsnorm_dw_kernel(float *dw,         /* (C) */
                                         const float *dout, /* (N, C) */
                                         const float *inp,  /* (N, C) */
                                         const float *rstd, /* (N) */
                                         int N, int C) {
  const size_t c = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= (size_t)C) return;
  float acc = dw[c];
  for (int i = 0; i < N; i++) acc += dout[(size_t)i * C + c] * inp[(size_t)i * C + c] * rstd[i];
  dw[c] = acc;
}

extern "C" int cuda_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w,
                                    int N, int C, float eps) {
  GORP_CHECK(N >= 0 && C >= 0, GORP_EINPUT, "rmsnorm_forward: bad sizes N=%d C=%d", N, C);
  if (N == 0 || C == 0) return GORP_OK;
  rmsnorm_forward_kernel<<<N, THREADS>>>(out, rstd, inp, w, C, eps);
  LAUNCH_CHECK(rmsnorm_forward_kernel);
  return GORP_OK;
}

extern "C" int cuda_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp,
                                     const float *w, const float *rstd, int N, int C) {
  GORP_CHECK(N >= 0 && C >= 0, GORP_EINPUT, "rmsnorm_backward: bad sizes N=%d C=%d", N, C);
  if (N == 0 || C == 0) return GORP_OK;
  rmsnorm_backward_kernel<<<N, THREADS>>>(dinp, dout, inp, w, rstd, C);
  LAUNCH_CHECK(rmsnorm_backward_kernel);
  if (dw) {
    rmsnorm_dw_kernel<<<col_blocks(C), THREADS>>>(dw, dout, inp, rstd, N, C);
    LAUNCH_CHECK(rmsnorm_dw_kernel);
  }
  return GORP_OK;
}

/* ---- rope: one thread per rotated pair ---- */

/* Rotates each head vector by +angle (sign = 1, forward) or -angle (sign = -1, backward). */
__global__ static void rope_kernel(float *x,           /* (B, T, NH*D) */
                                   const float *cos_t, /* (T, D/2) */
                                   const float *sin_t, /* (T, D/2) */
                                   int T, int NH, int D, size_t n_pairs, float sign) {
  const int half = D / 2;
  for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n_pairs;
       idx += (size_t)gridDim.x * blockDim.x) {
    const size_t i = idx % half, head = idx / half; /* head: (b * T + t) * NH + h */
    const size_t t = head / NH % T;
    float *v = x + head * D;
    const float cs = cos_t[t * half + i], s = sign * sin_t[t * half + i];
    const float a = v[i], c = v[i + half];
    v[i] = a * cs - c * s;
    v[i + half] = c * cs + a * s;
  }
}

static int rope_launch(const char *op, float *x, const float *cos_t, const float *sin_t, int B,
                       int T, int NH, int D, float sign) {
  GORP_CHECK(B >= 0 && T >= 0 && NH >= 0 && D >= 0, GORP_EINPUT,
             "%s: bad sizes B=%d T=%d NH=%d D=%d", op, B, T, NH, D);
  const size_t n_pairs = (size_t)B * T * NH * (D / 2);
  if (n_pairs == 0) return GORP_OK;
  rope_kernel<<<grid_blocks(n_pairs), THREADS>>>(x, cos_t, sin_t, T, NH, D, n_pairs, sign);
  LAUNCH_CHECK(rope_kernel);
  return GORP_OK;
}

extern "C" int cuda_rope_forward(float *x, const float *cos_t, const float *sin_t, int B, int T,
                                 int NH, int D) {
  return rope_launch("rope_forward", x, cos_t, sin_t, B, T, NH, D, 1.0f);
}

extern "C" int cuda_rope_backward(float *dx, const float *cos_t, const float *sin_t, int B, int T,
                                  int NH, int D) {
  return rope_launch("rope_backward", dx, cos_t, sin_t, B, T, NH, D, -1.0f);
}

/* ---- attention: causal, grouped-query; query head h reads kv head h / (H / KV) ----
 * A block's threads are at least D (each owns one d of an output row), and the scores of a row
 * against the keys are computed a warp per key (lanes over d, a butterfly sum). */

/* A block's threads are at most 1024 (D up to 1024): registers for a full block of them. */
#define ATT_BOUNDS __launch_bounds__(1024)

/* One query row of a block: p (n) = softmax(scale q . k_j) over the keys j < n (kb, vb: rows of
 * stride KD), with kernels.c's softmax_row, then out (D) = sum_j p[j] v_j. q is the block's shared
 * copy of the row; the scores are computed a warp per key. Every thread of the block calls it
 * (its barriers). */
__device__ static void attention_row(float *out, float *p, const float *qs, const float *kb,
                                     const float *vb, size_t KD, int n, int D, float scale) {
  const int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP, nw = blockDim.x / WARP;
  for (int j = warp; j < n; j += nw) {
    const float *kj = kb + (size_t)j * KD;
    float s = 0.0f;
    for (int d = lane; d < D; d += WARP) s += qs[d] * kj[d];
    s = warp_sum(s);
    if (lane == 0) p[j] = scale * s;
  }
  __syncthreads();
  /* the block's own writes to p are visible to it after the barrier */
  float mx = -INFINITY;
  for (int j = threadIdx.x; j < n; j += blockDim.x) mx = p[j] > mx ? p[j] : mx;
  mx = block_max(mx);
  double sum = 0.0;
  for (int j = threadIdx.x; j < n; j += blockDim.x) {
    p[j] = exp_fast(p[j] - mx);
    sum += p[j];
  }
  sum = block_sum(sum);
  const float inv = (float)(1.0 / sum);
  for (int j = threadIdx.x; j < n; j += blockDim.x) p[j] *= inv;
  __syncthreads();
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float acc = 0.0f;
    for (int j = 0; j < n; j++) acc += p[j] * vb[(size_t)j * KD + d];
    out[d] = acc;
  }
}

/* One block per row (b, h, t): scores into att's row (0 after column t), its softmax there, then
 * out = P V. */
__global__ static void ATT_BOUNDS attention_forward_kernel(float *out,     /* (B, T, H*D) */
                                                           float *att,     /* (B, H, T, T) */
                                                           const float *q, /* (B, T, H*D) */
                                                           const float *k, /* (B, T, KV*D) */
                                                           const float *v, /* (B, T, KV*D) */
                                                           int T, int H, int KV, int D,
                                                           float scale) {
  extern __shared__ float qs[]; /* (D) the query row */
  const size_t row = blockIdx.x, bh = row / T, b = bh / H;
  const int t = (int)(row % T), h = (int)(bh % H), kvh = h / (H / KV);
  const size_t QD = (size_t)H * D, KD = (size_t)KV * D, o = (b * T + t) * QD + (size_t)h * D;
  float *p = att + row * T;
  for (int d = threadIdx.x; d < D; d += blockDim.x) qs[d] = q[o + d];
  __syncthreads();
  attention_row(out + o, p, qs, k + b * T * KD + (size_t)kvh * D, v + b * T * KD + (size_t)kvh * D,
                KD, t + 1, D, scale);
  for (int j = t + 1 + threadIdx.x; j < T; j += blockDim.x) p[j] = 0.0f;
}

/* Backward, in three kernels without atomics: rowdot (B, H, T) = sum_j dP P of each row, with
 * dP = dout V^T; then dk, dv per key row (summing the rows t >= j of every query head of the
 * group, recomputing dP and dS = P (dP - rowdot)); then dq per query row. */

__global__ static void ATT_BOUNDS attention_rowdot_kernel(float *rowdot,     /* (B, H, T) */
                                                          const float *dout, /* (B, T, H*D) */
                                                          const float *att,  /* (B, H, T, T) */
                                                          const float *v,    /* (B, T, KV*D) */
                                                          int T, int H, int KV, int D) {
  extern __shared__ float dos[]; /* (D) the row of dout */
  const size_t row = blockIdx.x, bh = row / T, b = bh / H;
  const int t = (int)(row % T), h = (int)(bh % H), kvh = h / (H / KV);
  const int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP, nw = blockDim.x / WARP;
  const size_t QD = (size_t)H * D, KD = (size_t)KV * D;
  const float *vb = v + b * T * KD + (size_t)kvh * D, *p = att + row * T;
  for (int d = threadIdx.x; d < D; d += blockDim.x)
    dos[d] = dout[(b * T + t) * QD + (size_t)h * D + d];
  __syncthreads();
  double part = 0.0;
  for (int j = warp; j <= t; j += nw) {
    const float *vj = vb + (size_t)j * KD;
    float dp = 0.0f;
    for (int d = lane; d < D; d += WARP) dp += dos[d] * vj[d];
    dp = warp_sum(dp);
    if (lane == 0) part += (double)dp * p[j];
  }
  part = block_sum(part);
  if (threadIdx.x == 0) rowdot[row] = (float)part;
}

/* One block per key row (b, kvh, j): dk (+= scale sum dS q) and dv (+= sum P dout) over the rows
 * t >= j (P is 0 above the diagonal) of the group's query heads, a chunk of blockDim rows at a
 * time. Thread d owns element d of both rows. */
__global__ static void ATT_BOUNDS attention_dkv_kernel(float *dk,           /* (B, T, KV*D) */
                                                       float *dv,           /* (B, T, KV*D) */
                                                       const float *rowdot, /* (B, H, T) */
                                                       const float *dout,   /* (B, T, H*D) */
                                                       const float *att,    /* (B, H, T, T) */
                                                       const float *q,      /* (B, T, H*D) */
                                                       const float *v,      /* (B, T, KV*D) */
                                                       int T, int H, int KV, int D, float scale) {
  extern __shared__ float smem[];
  float *vs = smem, *ds = smem + D, *ps = ds + blockDim.x; /* (D) v row j, (blockDim) dS and P */
  const size_t key = blockIdx.x, bk = key / T, b = bk / KV;
  const int j = (int)(key % T), kvh = (int)(bk % KV), group = H / KV;
  const int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP, nw = blockDim.x / WARP;
  const int d = threadIdx.x;
  const size_t QD = (size_t)H * D, KD = (size_t)KV * D;
  for (int e = threadIdx.x; e < D; e += blockDim.x)
    vs[e] = v[(b * T + j) * KD + (size_t)kvh * D + e];
  __syncthreads();
  float dk_acc = 0.0f, dv_acc = 0.0f;
  for (int h = kvh * group; h < (kvh + 1) * group; h++) {
    const float *p = att + (b * H + h) * T * T, *rd = rowdot + (b * H + h) * T;
    const float *dob = dout + b * T * QD + (size_t)h * D, *qb = q + b * T * QD + (size_t)h * D;
    for (int t0 = j; t0 < T; t0 += blockDim.x) {
      const int n = T - t0 < (int)blockDim.x ? T - t0 : (int)blockDim.x;
      for (int r = warp; r < n; r += nw) {
        const float *dot = dob + (size_t)(t0 + r) * QD;
        float dp = 0.0f;
        for (int e = lane; e < D; e += WARP) dp += dot[e] * vs[e];
        dp = warp_sum(dp);
        if (lane == 0) {
          const float pr = p[(size_t)(t0 + r) * T + j];
          ps[r] = pr;
          ds[r] = pr * (dp - rd[t0 + r]);
        }
      }
      __syncthreads();
      if (d < D)
        for (int r = 0; r < n; r++) {
          dk_acc += ds[r] * qb[(size_t)(t0 + r) * QD + d];
          dv_acc += ps[r] * dob[(size_t)(t0 + r) * QD + d];
        }
      __syncthreads(); /* ds and ps are refilled by the next chunk */
    }
  }
  if (d < D) {
    dk[(b * T + j) * KD + (size_t)kvh * D + d] += scale * dk_acc;
    dv[(b * T + j) * KD + (size_t)kvh * D + d] += dv_acc;
  }
}

/* One block per query row (b, h, t): dq = scale sum_j dS K over the keys j <= t, a chunk of
 * blockDim keys at a time. Thread d owns element d of the row. */
__global__ static void ATT_BOUNDS attention_dq_kernel(float *dq,           /* (B, T, H*D) */
                                                      const float *rowdot, /* (B, H, T) */
                                                      const float *dout,   /* (B, T, H*D) */
                                                      const float *att,    /* (B, H, T, T) */
                                                      const float *k,      /* (B, T, KV*D) */
                                                      const float *v,      /* (B, T, KV*D) */
                                                      int T, int H, int KV, int D, float scale) {
  extern __shared__ float smem[];
  float *dos = smem, *ds = smem + D; /* (D) the row of dout, (blockDim) dS */
  const size_t row = blockIdx.x, bh = row / T, b = bh / H;
  const int t = (int)(row % T), h = (int)(bh % H), kvh = h / (H / KV);
  const int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP, nw = blockDim.x / WARP;
  const int d = threadIdx.x;
  const size_t QD = (size_t)H * D, KD = (size_t)KV * D;
  const float *kb = k + b * T * KD + (size_t)kvh * D, *vb = v + b * T * KD + (size_t)kvh * D;
  const float *p = att + row * T, rd = rowdot[row];
  for (int e = threadIdx.x; e < D; e += blockDim.x)
    dos[e] = dout[(b * T + t) * QD + (size_t)h * D + e];
  __syncthreads();
  float acc = 0.0f;
  for (int j0 = 0; j0 <= t; j0 += blockDim.x) {
    const int n = t + 1 - j0 < (int)blockDim.x ? t + 1 - j0 : (int)blockDim.x;
    for (int r = warp; r < n; r += nw) {
      const float *vj = vb + (size_t)(j0 + r) * KD;
      float dp = 0.0f;
      for (int e = lane; e < D; e += WARP) dp += dos[e] * vj[e];
      dp = warp_sum(dp);
      if (lane == 0) ds[r] = p[j0 + r] * (dp - rd);
    }
    __syncthreads();
    if (d < D)
      for (int r = 0; r < n; r++) acc += ds[r] * kb[(size_t)(j0 + r) * KD + d];
    __syncthreads(); /* ds is refilled by the next chunk */
  }
  if (d < D) dq[(b * T + t) * QD + (size_t)h * D + d] = scale * acc;
}

/* Checks attention's sizes; *rows = B * H * T, the blocks of a per-row kernel (0: nothing to
 * do); *threads: at least D, so that each thread owns one element of a head's row. */
static int attention_sizes(const char *op, int B, int T, int H, int KV, int D, size_t *rows,
                           int *threads) {
  GORP_CHECK(B >= 0 && T >= 0 && H >= 0 && KV >= 0 && D >= 0, GORP_EINPUT,
             "%s: bad sizes B=%d T=%d H=%d KV=%d D=%d", op, B, T, H, KV, D);
  *rows = (size_t)B * H * T;
  *threads = THREADS;
  if (*rows == 0 || D == 0) {
    *rows = 0;
    return GORP_OK;
  }
  GORP_CHECK(KV > 0 && H % KV == 0, GORP_EINPUT,
             "%s: %d query heads do not split into groups over %d key/value heads", op, H, KV);
  GORP_CHECK(D <= 1024, GORP_EINPUT, "%s: head dimension %d above the 1024 threads of a block", op,
             D);
  GORP_CHECK(*rows <= 0x7fffffff, GORP_EINPUT, "%s: %zu rows above a grid's 2^31 - 1 blocks", op,
             *rows);
  if (D > THREADS) *threads = (D + WARP - 1) / WARP * WARP;
  return GORP_OK;
}

extern "C" int cuda_attention_forward(float *out, float *att, const float *q, const float *k,
                                      const float *v, int B, int T, int H, int KV, int D) {
  size_t rows;
  int threads;
  GORP_CALL(attention_sizes("attention_forward", B, T, H, KV, D, &rows, &threads));
  if (rows == 0) return GORP_OK;
  attention_forward_kernel<<<(unsigned int)rows, threads, D * sizeof(float)>>>(
      out, att, q, k, v, T, H, KV, D, 1.0f / sqrtf((float)D));
  LAUNCH_CHECK(attention_forward_kernel);
  return GORP_OK;
}

/* scratch and n_scratch are the CPU's per-thread (T, T) buffers: these kernels need none (the
 * row sums live in the workspace). */
extern "C" int cuda_attention_backward(float *dq, float *dk, float *dv, float *scratch,
                                       int n_scratch, const float *dout, const float *att,
                                       const float *q, const float *k, const float *v, int B, int T,
                                       int H, int KV, int D) {
  (void)scratch;
  (void)n_scratch;
  size_t rows;
  int threads;
  GORP_CALL(attention_sizes("attention_backward", B, T, H, KV, D, &rows, &threads));
  if (rows == 0) return GORP_OK;
  const float scale = 1.0f / sqrtf((float)D);
  void *ws;
  GORP_CALL(workspace_get(&ws, rows * sizeof(float)));
  float *rowdot = (float *)ws;
  attention_rowdot_kernel<<<(unsigned int)rows, threads, D * sizeof(float)>>>(rowdot, dout, att, v,
                                                                              T, H, KV, D);
  LAUNCH_CHECK(attention_rowdot_kernel);
  const size_t keys = (size_t)B * KV * T;
  attention_dkv_kernel<<<(unsigned int)keys, threads, (D + 2 * threads) * sizeof(float)>>>(
      dk, dv, rowdot, dout, att, q, v, T, H, KV, D, scale);
  LAUNCH_CHECK(attention_dkv_kernel);
  attention_dq_kernel<<<(unsigned int)rows, threads, (D + threads) * sizeof(float)>>>(
      dq, rowdot, dout, att, k, v, T, H, KV, D, scale);
  LAUNCH_CHECK(attention_dq_kernel);
  return GORP_OK;
}

/* Decoding: one block per (row i, query head h), row i being position pos[i] of sequence seq[i]:
 * its scores against that sequence's cached keys 0..pos[i], their softmax and the sum of values,
 * as attention_forward_kernel computes a row. */
__global__ static void ATT_BOUNDS attention_decode_kernel(float *out,      /* (N, H*D) */
                                                          const float *q,  /* (N, H*D) */
                                                          const float *kc, /* (n_seq, S, KV*D) */
                                                          const float *vc, /* (n_seq, S, KV*D) */
                                                          const int *seq,  /* (N) */
                                                          const int *pos,  /* (N) */
                                                          int S, int H, int KV, int D,
                                                          float scale) {
  extern __shared__ float qs[]; /* (D) the query row, then (S) its scores */
  const size_t i = blockIdx.x / H;
  const int h = (int)(blockIdx.x % H), kvh = h / (H / KV);
  const size_t QD = (size_t)H * D, KD = (size_t)KV * D, o = i * QD + (size_t)h * D;
  const size_t cache = (size_t)seq[i] * S * KD + (size_t)kvh * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x) qs[d] = q[o + d];
  __syncthreads();
  attention_row(out + o, qs + D, qs, kc + cache, vc + cache, KD, pos[i] + 1, D, scale);
}

/* scratch and n_scratch are the CPU's per-thread buffers: the scores live in shared memory, so
 * the cache's positions and a head's dimension must fit in a block's 48 KiB of it. */
extern "C" int cuda_attention_decode(float *out, const float *q, const float *kc, const float *vc,
                                     const int *seq, const int *pos, float *scratch, int n_scratch,
                                     int N, int S, int H, int KV, int D) {
  (void)scratch;
  (void)n_scratch;
  size_t rows;
  int threads;
  GORP_CALL(attention_sizes("attention_decode", N, 1, H, KV, D, &rows, &threads));
  if (rows == 0) return GORP_OK;
  GORP_CHECK(S >= 1 && (size_t)S + D <= (48u << 10) / sizeof(float), GORP_EINPUT,
             "attention_decode: %d cached positions and head dimension %d exceed a block's 48 KiB "
             "of shared memory",
             S, D);
  attention_decode_kernel<<<(unsigned int)rows, threads, ((size_t)D + S) * sizeof(float)>>>(
      out, q, kc, vc, seq, pos, S, H, KV, D, 1.0f / sqrtf((float)D));
  LAUNCH_CHECK(attention_decode_kernel);
  return GORP_OK;
}

/* ---- swiglu ---- */

__global__ static void swiglu_forward_kernel(float *h,       /* (N) */
                                             const float *g, /* (N) */
                                             const float *u, /* (N) */
                                             int N) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)N;
       i += (size_t)gridDim.x * blockDim.x) {
    const float s = 1.0f / (1.0f + exp_fast(-g[i]));
    h[i] = g[i] * s * u[i];
  }
}

__global__ static void swiglu_backward_kernel(float *dg,       /* (N) */
                                              float *du,       /* (N) */
                                              const float *dh, /* (N) */
                                              const float *g,  /* (N) */
                                              const float *u,  /* (N) */
                                              int N) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)N;
       i += (size_t)gridDim.x * blockDim.x) {
    const float gi = g[i], ui = u[i], dhi = dh[i];
    const float s = 1.0f / (1.0f + exp_fast(-gi));
    du[i] = dhi * gi * s;
    dg[i] = dhi * ui * s * (1.0f + gi * (1.0f - s));
  }
}

extern "C" int cuda_swiglu_forward(float *h, const float *g, const float *u, int N) {
  GORP_CHECK(N >= 0, GORP_EINPUT, "swiglu_forward: bad size N=%d", N);
  if (N == 0) return GORP_OK;
  swiglu_forward_kernel<<<grid_blocks(N), THREADS>>>(h, g, u, N);
  LAUNCH_CHECK(swiglu_forward_kernel);
  return GORP_OK;
}

extern "C" int cuda_swiglu_backward(float *dg, float *du, const float *dh, const float *g,
                                    const float *u, int N) {
  GORP_CHECK(N >= 0, GORP_EINPUT, "swiglu_backward: bad size N=%d", N);
  if (N == 0) return GORP_OK;
  swiglu_backward_kernel<<<grid_blocks(N), THREADS>>>(dg, du, dh, g, u, N);
  LAUNCH_CHECK(swiglu_backward_kernel);
  return GORP_OK;
}

/* ---- dropout: one thread per element, the mask drawn as kernels.c's dropout_rows draws it ---- */

__global__ static void dropout_rows_kernel(float *y,                 /* (N, in) */
                                           const float *x,           /* (N, in) */
                                           const uint64_t *row_keys, /* (N) */
                                           int N, int in, int first, uint32_t drop_below, float inv,
                                           int add) {
  for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < (size_t)N * in;
       e += (size_t)gridDim.x * blockDim.x) {
    const size_t n = e / in;
    const int g = first + (int)(e % in);
    const uint64_t bits = rng_bits_keyed(row_keys[n], (uint64_t)g / 4);
    const float f = (uint32_t)(bits >> (16 * (g % 4)) & 0xffffu) >= drop_below ? inv : 0.0f;
    y[e] = add ? y[e] + x[e] * f : x[e] * f;
  }
}

extern "C" int cuda_dropout_rows(float *y, const float *x, const uint64_t *row_keys, int N, int in,
                                 int first, float p, int add) {
  GORP_CHECK(N >= 0 && in >= 0 && first >= 0 && p >= 0.0f && p < 1.0f, GORP_EINPUT,
             "dropout_rows: bad arguments N=%d in=%d first=%d p=%g", N, in, first, (double)p);
  if (N == 0 || in == 0) return GORP_OK;
  /* the threshold and scale as the CPU computes them, on the host (the same fp32 rounding) */
  const uint32_t drop_below = (uint32_t)(p * 65536.0f + 0.5f);
  const float inv = 1.0f / (1.0f - p);
  dropout_rows_kernel<<<grid_blocks((size_t)N * in), THREADS>>>(y, x, row_keys, N, in, first,
                                                                drop_below, inv, add);
  LAUNCH_CHECK(dropout_rows_kernel);
  return GORP_OK;
}

/* ---- row gather and scatter: one thread per element ---- */

__global__ static void rows_move_kernel(float *out,      /* gather (R, C); scatter (N, C) */
                                        const float *in, /* gather (N, C); scatter (R, C) */
                                        const int *rows, /* (R) */
                                        int R, int C, int scatter) {
  for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < (size_t)R * C;
       e += (size_t)gridDim.x * blockDim.x) {
    const size_t r = e / C, j = e % C, at = (size_t)rows[r] * C + j;
    if (scatter)
      out[at] = in[e];
    else
      out[e] = in[at];
  }
}

static int rows_move(float *out, const float *in, const int *rows, int R, int C, int scatter) {
  GORP_CHECK(R >= 0 && C >= 0, GORP_EINPUT, "rows_%s: bad size R=%d C=%d",
             scatter ? "scatter" : "gather", R, C);
  if (R == 0 || C == 0) return GORP_OK;
  rows_move_kernel<<<grid_blocks((size_t)R * C), THREADS>>>(out, in, rows, R, C, scatter);
  LAUNCH_CHECK(rows_move_kernel);
  return GORP_OK;
}

extern "C" int cuda_rows_gather(float *out, const float *in, const int *rows, int R, int C) {
  return rows_move(out, in, rows, R, C, 0);
}

extern "C" int cuda_rows_scatter(float *out, const float *in, const int *rows, int R, int C) {
  return rows_move(out, in, rows, R, C, 1);
}

/* ---- cross-entropy: one block per row ---- */

/* Each row's weighted loss (0 for an ignored row) and whether it has a target. */
__global__ static void crossentropy_forward_kernel(double *row_loss,     /* (N) */
                                                   int *has_target,      /* (N) */
                                                   const float *logits,  /* (N, V) */
                                                   const int *targets,   /* (N) */
                                                   const float *weights, /* (N) or NULL */
                                                   int V) {
  const size_t i = blockIdx.x;
  const int target = targets[i];
  if (target < 0) { /* the whole block returns: no reduction is entered */
    if (threadIdx.x == 0) {
      row_loss[i] = 0.0;
      has_target[i] = 0;
    }
    return;
  }
  const float *row = logits + i * V;
  float mx = -INFINITY;
  for (int j = threadIdx.x; j < V; j += blockDim.x) mx = row[j] > mx ? row[j] : mx;
  mx = block_max(mx);
  double sum = 0.0;
  for (int j = threadIdx.x; j < V; j += blockDim.x) sum += exp_fast(row[j] - mx);
  sum = block_sum(sum);
  if (threadIdx.x == 0) {
    row_loss[i] = (weights ? weights[i] : 1.0) * (log(sum) + mx - row[target]);
    has_target[i] = 1;
  }
}

__global__ static void crossentropy_backward_kernel(float *logits,        /* (N, V) */
                                                    const int *targets,   /* (N) */
                                                    const float *weights, /* (N) or NULL */
                                                    int V, float div) {
  const size_t i = blockIdx.x;
  const int target = targets[i];
  float *row = logits + i * V;
  if (target < 0) {
    for (int j = threadIdx.x; j < V; j += blockDim.x) row[j] = 0.0f;
    return;
  }
  float mx = -INFINITY;
  for (int j = threadIdx.x; j < V; j += blockDim.x) mx = row[j] > mx ? row[j] : mx;
  mx = block_max(mx);
  double sum = 0.0;
  for (int j = threadIdx.x; j < V; j += blockDim.x) sum += exp_fast(row[j] - mx);
  sum = block_sum(sum); /* its barriers: every read of the row is done before it is overwritten */
  const double scale = (weights ? weights[i] : 1.0) / div;
  const float inv = (float)(scale / sum);
  for (int j = threadIdx.x; j < V; j += blockDim.x) row[j] = exp_fast(row[j] - mx) * inv;
  __syncthreads();
  if (threadIdx.x == 0) row[target] -= (float)scale;
}

/* The rows' losses are summed on the host in row order: the same total on every run. */
extern "C" int cuda_crossentropy_forward(double *loss, int *n_targets, const float *logits,
                                         const int *targets, const float *weights, int N, int V) {
  GORP_CHECK(N >= 0 && V >= 0, GORP_EINPUT, "crossentropy_forward: bad sizes N=%d V=%d", N, V);
  *loss = 0.0;
  *n_targets = 0;
  if (N == 0) return GORP_OK;
  GORP_CHECK(V > 0, GORP_EINPUT, "crossentropy_forward: %d rows of 0 logits", N);
  const size_t bytes = (size_t)N * (sizeof(double) + sizeof(int));
  void *ws;
  GORP_CALL(workspace_get(&ws, bytes));
  double *row_loss = (double *)ws;
  int *has_target = (int *)(row_loss + N);
  crossentropy_forward_kernel<<<N, THREADS>>>(row_loss, has_target, logits, targets, weights, V);
  LAUNCH_CHECK(crossentropy_forward_kernel);
  double *host = (double *)malloc(bytes);
  GORP_CHECK(host, GORP_EMEM, "out of memory allocating %zu bytes for the rows' losses", bytes);
  const cudaError_t e = cudaMemcpy(host, ws, bytes, cudaMemcpyDeviceToHost);
  if (e == cudaSuccess) {
    const int *has = (const int *)(host + N);
    for (int i = 0; i < N; i++) {
      *loss += host[i];
      *n_targets += has[i];
    }
  }
  free(host);
  if (e != cudaSuccess)
    GORP_ERR(GORP_ELIB, "CUDA call failed (%s): cudaMemcpy of the rows' losses",
             cudaGetErrorString(e));
  return GORP_OK;
}

extern "C" int cuda_crossentropy_backward(float *logits, const int *targets, const float *weights,
                                          int N, int V, float div) {
  GORP_CHECK(N >= 0 && V >= 0, GORP_EINPUT, "crossentropy_backward: bad sizes N=%d V=%d", N, V);
  if (N == 0 || V == 0) return GORP_OK;
  crossentropy_backward_kernel<<<N, THREADS>>>(logits, targets, weights, V, div);
  LAUNCH_CHECK(crossentropy_backward_kernel);
  return GORP_OK;
}

/* ---- AdamW ---- */

__global__ static void adamw_kernel(float *params,      /* (n) */
                                    float *m,           /* (n) */
                                    float *v,           /* (n) */
                                    const float *grads, /* (n) */
                                    size_t n, float decay, float b1, float b2, float eps,
                                    float step_size, float bc2_sqrt) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (size_t)gridDim.x * blockDim.x) {
    const float g = grads[i];
    float p = params[i] * decay;
    const float mi = m[i] + (g - m[i]) * (1.0f - b1); /* torch: exp_avg.lerp_(grad, 1 - beta1) */
    const float vi = v[i] * b2 + (1.0f - b2) * g * g;
    const float denom = sqrtf(vi) / bc2_sqrt + eps;
    p -= step_size * (mi / denom);
    params[i] = p;
    m[i] = mi;
    v[i] = vi;
  }
}

/* The bias corrections in double on the host, as the CPU's adamw_update. */
extern "C" int cuda_adamw_update(float *params, float *m, float *v, const float *grads, size_t n,
                                 adamw_hyper h) {
  GORP_CHECK(h.step >= 1, GORP_EINPUT, "adamw_update: step %ld (steps count from 1)", h.step);
  if (n == 0) return GORP_OK;
  const float b1 = h.beta1, b2 = h.beta2;
  const double bc1 = 1.0 - pow(b1, (double)h.step), bc2 = 1.0 - pow(b2, (double)h.step);
  const float step_size = (float)(h.lr / bc1), bc2_sqrt = (float)sqrt(bc2);
  const float decay = 1.0f - h.lr * h.weight_decay;
  adamw_kernel<<<grid_blocks(n), THREADS>>>(params, m, v, grads, n, decay, b1, b2, h.eps, step_size,
                                            bc2_sqrt);
  LAUNCH_CHECK(adamw_kernel);
  return GORP_OK;
}

/* ---- linalg.h's sign convention on the rows of Q: one block per row ---- */

__global__ static void sign_fix_rows_kernel(float *Q, /* (k, n) */
                                            int n) {
  __shared__ float best_abs[THREADS];
  __shared__ int best_at[THREADS];
  float *row = Q + (size_t)blockIdx.x * n;
  float a = -1.0f;
  int at = n;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const float v = fabsf(row[i]);
    if (v > a) { /* strict: a thread's first of equal magnitudes */
      a = v;
      at = i;
    }
  }
  best_abs[threadIdx.x] = a;
  best_at[threadIdx.x] = at;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s /= 2) {
    if ((int)threadIdx.x < s) {
      const float o = best_abs[threadIdx.x + s];
      const int oi = best_at[threadIdx.x + s];
      /* the larger magnitude, and of equal ones the first entry, as linalg_sign_fix */
      if (o > best_abs[threadIdx.x] || (o == best_abs[threadIdx.x] && oi < best_at[threadIdx.x])) {
        best_abs[threadIdx.x] = o;
        best_at[threadIdx.x] = oi;
      }
    }
    __syncthreads();
  }
  const int first = best_at[0];
  const int flip = first < n && row[first] < 0.0f;
  __syncthreads(); /* every thread has read the sign before any entry changes */
  if (flip)
    for (int i = threadIdx.x; i < n; i += blockDim.x) row[i] = -row[i];
}

extern "C" int cuda_sign_fix_rows(float *Q, int k, int n) {
  GORP_CHECK(k >= 0 && n >= 0, GORP_EINPUT, "sign_fix_rows: bad size k=%d n=%d", k, n);
  if (k == 0 || n == 0) return GORP_OK;
  sign_fix_rows_kernel<<<k, THREADS>>>(Q, n);
  LAUNCH_CHECK(sign_fix_rows_kernel);
  return GORP_OK;
}
