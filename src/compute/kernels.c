/* The CPU kernels of kernels.h: element-wise work is plain loops split over OpenMP threads with a
 * static schedule (each output element is computed by the same code whatever the thread count;
 * reductions over rows are combined per thread in thread order, so a result is deterministic for
 * a given thread count); attention's products go through backend_get()->gemm, whose status the op
 * returns (its parallel loops collect it in a shared status and return it after the loop). */
#include "gorp/kernels.h"

#include "gorp/backend.h"
#include "gorp/err.h"
#include "gorp/rng.h"

#include "exp_fast.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

/* Element-wise work (floats, OPS_PARALLEL_MIN of kernels.h) and decoding attention (multiply-adds)
 * below these run on the calling thread alone (an `if` clause on the parallel region, one thread
 * in the attention plan). Decoding
 * sends one row per prompt through every op, a few thousand floats: waking the team for that costs
 * more than the work, and on a busy machine each wake-up waits for a descheduled thread
 * (BENCHMARKS.md, "decoding on a busy machine"). Training's ops are far above both. The results do
 * not change: each output element is computed by the same code on whichever thread. */
enum { ATT_PARALLEL_MIN = 1 << 20 };

/* Rows of query positions per causal attention block: a block of rows [r0, r1) needs keys
 * [0, r1) only, so the products skip most of the masked upper triangle. */
enum { ATT_BLOCK = 64 };

void embedding_forward(float *out, const int *tokens, op_weight emb, int N, int C) {
#pragma omp parallel for schedule(static) if ((size_t)N * C >= OPS_PARALLEL_MIN)
  for (int i = 0; i < N; i++) {
    float *o = out + (size_t)i * C;
    if (emb.f) {
      memcpy(o, emb.f + (size_t)tokens[i] * C, C * sizeof(float));
    } else {
      const bf16 *row = emb.h + (size_t)tokens[i] * C;
#pragma omp simd
      for (int c = 0; c < C; c++) o[c] = bf16_to_f32(row[c]);
    }
  }
}

void embedding_backward(float *demb, const float *dout, const int *tokens, int N, int C) {
  /* each thread owns a range of columns and adds the rows in order (as one thread would) */
#pragma omp parallel
  {
    const int nt = omp_get_num_threads(), t = omp_get_thread_num();
    const int c0 = (int)((long)C * t / nt), c1 = (int)((long)C * (t + 1) / nt);
    for (int i = 0; i < N; i++) {
      float *d = demb + (size_t)tokens[i] * C;
      const float *g = dout + (size_t)i * C;
#pragma omp simd
      for (int c = c0; c < c1; c++) d[c] += g[c];
    }
  }
}

void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int C,
                     float eps) {
#pragma omp parallel for schedule(static) if ((size_t)N * C >= OPS_PARALLEL_MIN)
  for (int i = 0; i < N; i++) {
    const float *x = inp + (size_t)i * C;
    float *y = out + (size_t)i * C;
    double ss = 0.0;
#pragma omp simd reduction(+ : ss)
    for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
    float r = 1.0f / sqrtf((float)(ss / C) + eps);
#pragma omp simd
    for (int c = 0; c < C; c++) y[c] = w[c] * (x[c] * r);
    rstd[i] = r;
  }
}

void rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                      const float *rstd, int N, int C) {
#pragma omp parallel
  {
#pragma omp for schedule(static)
    for (int i = 0; i < N; i++) {
      const float *x = inp + (size_t)i * C, *dy = dout + (size_t)i * C;
      float *dx = dinp + (size_t)i * C;
      const float r = rstd[i];
      double dot = 0.0; /* sum_c w_c dy_c x_c */
#pragma omp simd reduction(+ : dot)
      for (int c = 0; c < C; c++) dot += (double)w[c] * dy[c] * x[c];
      const float k = (float)(dot * r * r * r / C);
#pragma omp simd
      for (int c = 0; c < C; c++) dx[c] += r * w[c] * dy[c] - x[c] * k;
    }
    /* dw: each thread owns a range of columns and adds the rows in order (as one thread would) */
    if (dw) {
      const int nt = omp_get_num_threads(), t = omp_get_thread_num();
      const int c0 = (int)((long)C * t / nt), c1 = (int)((long)C * (t + 1) / nt);
      for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C, *dy = dout + (size_t)i * C;
        const float r = rstd[i];
#pragma omp simd
        for (int c = c0; c < c1; c++) dw[c] += dy[c] * x[c] * r;
      }
    }
  }
}

void rope_tables(float *cos_t, float *sin_t, int pos0, int T, int D, float theta) {
  const int half = D / 2;
  for (int i = 0; i < half; i++) {
    /* HF: inv_freq = 1 / theta^(arange(0, D, 2) / D), all in float32 */
    const float inv = 1.0f / powf(theta, (float)(2 * i) / (float)D);
    for (int t = 0; t < T; t++) {
      const float ang = (float)(pos0 + t) * inv;
      cos_t[(size_t)t * half + i] = cosf(ang);
      sin_t[(size_t)t * half + i] = sinf(ang);
    }
  }
}

/* Rotates each head vector by +angle (sign = 1) or -angle (sign = -1, the transpose). */
static void rope_apply(float *x, const float *cos_t, const float *sin_t, int B, int T, int NH,
                       int D, float sign) {
  const int half = D / 2, parallel = (size_t)B * T * NH * D >= OPS_PARALLEL_MIN;
#pragma omp parallel for collapse(2) schedule(static) if (parallel)
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      const float *cs = cos_t + (size_t)t * half, *sn = sin_t + (size_t)t * half;
      for (int h = 0; h < NH; h++) {
        float *v = x + (((size_t)b * T + t) * NH + h) * D;
#pragma omp simd
        for (int i = 0; i < half; i++) {
          const float a = v[i], c = v[i + half], s = sign * sn[i];
          v[i] = a * cs[i] - c * s;
          v[i + half] = c * cs[i] + a * s;
        }
      }
    }
}

void rope_forward(float *x, const float *cos_t, const float *sin_t, int B, int T, int NH, int D) {
  rope_apply(x, cos_t, sin_t, B, T, NH, D, 1.0f);
}

void rope_backward(float *dx, const float *cos_t, const float *sin_t, int B, int T, int NH, int D) {
  rope_apply(dx, cos_t, sin_t, B, T, NH, D, -1.0f);
}

/* row (n) = softmax(row) in place: the training and the decoding attention share it, so that a
 * decoded position gets the probabilities its row of the full causal attention gets. */
static inline void softmax_row(float *row, int n) {
  float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
  for (int j = 0; j < n; j++) mx = row[j] > mx ? row[j] : mx;
  double sum = 0.0;
#pragma omp simd reduction(+ : sum)
  for (int j = 0; j < n; j++) {
    row[j] = exp_fast(row[j] - mx);
    sum += row[j];
  }
  const float inv = (float)(1.0 / sum);
#pragma omp simd
  for (int j = 0; j < n; j++) row[j] *= inv;
}

/* Causal softmax of rows [r0, r1) of p (rows of length T), each row t over columns 0..t;
 * columns t+1..T-1 are set to 0. */
static void causal_softmax_rows(float *p, int r0, int r1, int T) {
  for (int t = r0; t < r1; t++) {
    float *row = p + (size_t)(t - r0) * T;
    softmax_row(row, t + 1);
    for (int j = t + 1; j < T; j++) row[j] = 0.0f;
  }
}

/* What the attention ops share around their loop over (sequence, kv head) pairs: the pairs run
 * in parallel with single-threaded GEMMs when the backend allows concurrent calls, and a failing
 * product's status is kept for after the loop (a parallel region cannot be left by return). */
typedef struct attention_plan {
  const backend_ops *be;
  float scale;      /* 1 / sqrt(D) */
  int nt;           /* threads over the pairs */
  int gemm_threads; /* the backend's GEMM threads before, restored by attention_end */
  int status;       /* a failing product's status, shared by the threads (attention_record) */
} attention_plan;

/* The plan for pairs on at most max_threads threads (one per scratch slice, for the ops that take
 * scratch); sets the GEMM threads to 1 when the pairs run in parallel. */
static attention_plan attention_begin(int pairs, int max_threads, int D) {
  attention_plan plan = {.be = backend_get(), .scale = 1.0f / sqrtf((float)D), .status = GORP_OK};
  int nt = omp_get_max_threads();
  nt = nt < pairs ? nt : pairs;
  nt = nt < max_threads ? nt : max_threads;
  plan.nt = plan.be->concurrent && plan.be->set_gemm_threads && nt > 1 ? nt : 1;
  plan.gemm_threads = plan.nt > 1 ? plan.be->set_gemm_threads(1) : 0;
  return plan;
}

/* Records the failing status st of a thread's products (called inside the loop). */
static void attention_record(attention_plan *plan, int st) {
  if (st) {
#pragma omp atomic write
    plan->status = st;
  }
}

/* Restores the GEMM threads after the loop; returns the products' status. */
static int attention_end(const attention_plan *plan) {
  if (plan->nt > 1) plan->be->set_gemm_threads(plan->gemm_threads);
  return plan->status;
}

int attention_forward(float *out, float *att, const float *q, const float *k, const float *v, int B,
                      int T, int H, int KV, int D) {
  const int QD = H * D, KD = KV * D, group = H / KV;
  attention_plan plan = attention_begin(B * KV, 1 << 30, D);
#pragma omp parallel for num_threads(plan.nt) schedule(static)
  for (int bk = 0; bk < B * KV; bk++) {
    const int b = bk / KV, kvh = bk % KV;
    const float *kh = k + (size_t)b * T * KD + (size_t)kvh * D; /* (T, D) stride KD */
    const float *vh = v + (size_t)b * T * KD + (size_t)kvh * D; /* (T, D) stride KD */
    int st = GORP_OK;
    for (int h = kvh * group; h < (kvh + 1) * group && !st; h++) {
      const float *qh = q + (size_t)b * T * QD + (size_t)h * D; /* (T, D) stride QD */
      float *oh = out + (size_t)b * T * QD + (size_t)h * D;     /* (T, D) stride QD */
      float *p = att + ((size_t)b * H + h) * T * T;             /* (T, T) */
      for (int r0 = 0; r0 < T && !st; r0 += ATT_BLOCK) {
        const int r1 = r0 + ATT_BLOCK < T ? r0 + ATT_BLOCK : T, rows = r1 - r0;
        float *pb = p + (size_t)r0 * T; /* (rows, T), keys 0..r1-1 used */
        st = plan.be->gemm(0, 1, rows, r1, D, plan.scale, qh + (size_t)r0 * QD, QD, kh, KD, 0.0f,
                           pb, T);
        if (st) break;
        causal_softmax_rows(pb, r0, r1, T);
        st = plan.be->gemm(0, 0, rows, D, r1, 1.0f, pb, T, vh, KD, 0.0f, oh + (size_t)r0 * QD, QD);
      }
    }
    attention_record(&plan, st);
  }
  GORP_CALL(attention_end(&plan));
  return GORP_OK;
}

int attention_decode(float *out, const float *q, const float *kc, const float *vc, const int *seq,
                     const int *pos, float *scratch, int n_scratch, int N, int S, int H, int KV,
                     int D) {
  const int QD = H * D, KD = KV * D, group = H / KV;
  double keys = 0.0; /* the rows' cached positions: 2 * H * D multiply-adds each */
  for (int i = 0; i < N; i++) keys += pos[i] + 1;
  attention_plan plan =
      attention_begin(N * KV, 2.0 * keys * H * D < ATT_PARALLEL_MIN ? 1 : n_scratch, D);
#pragma omp parallel for num_threads(plan.nt) schedule(static)
  for (int ik = 0; ik < N * KV; ik++) {
    const int i = ik / KV, kvh = ik % KV, n = pos[i] + 1;
    const size_t ko = (size_t)seq[i] * S * KD + (size_t)kvh * D;   /* (n, D) stride KD */
    const size_t qo = (size_t)i * QD + (size_t)kvh * group * D;    /* (group, D) stride D */
    float *p = scratch + (size_t)omp_get_thread_num() * group * S; /* (group, n) stride S */
    /* the group's query heads share this key/value head: one product for all of them */
    int st = plan.be->gemm(0, 1, group, n, D, plan.scale, q + qo, D, kc + ko, KD, 0.0f, p, S);
    if (!st) {
      for (int h = 0; h < group; h++) softmax_row(p + (size_t)h * S, n);
      st = plan.be->gemm(0, 0, group, D, n, 1.0f, p, S, vc + ko, KD, 0.0f, out + qo, D);
    }
    attention_record(&plan, st);
  }
  GORP_CALL(attention_end(&plan));
  return GORP_OK;
}

int attention_backward(float *dq, float *dk, float *dv, float *scratch, int n_scratch,
                       const float *dout, const float *att, const float *q, const float *k,
                       const float *v, int B, int T, int H, int KV, int D) {
  const int QD = H * D, KD = KV * D, group = H / KV;
  attention_plan plan = attention_begin(B * KV, n_scratch, D);
#pragma omp parallel for num_threads(plan.nt) schedule(static)
  for (int bk = 0; bk < B * KV; bk++) {
    const int b = bk / KV, kvh = bk % KV;
    const size_t ko = (size_t)b * T * KD + (size_t)kvh * D;
    float *ds = scratch + (size_t)omp_get_thread_num() * T * T; /* (ATT_BLOCK, T): dP, then dS */
    int st = GORP_OK;
    for (int h = kvh * group; h < (kvh + 1) * group && !st; h++) {
      const size_t qo = (size_t)b * T * QD + (size_t)h * D;
      const float *p = att + ((size_t)b * H + h) * T * T; /* (T, T) */
      for (int r0 = 0; r0 < T && !st; r0 += ATT_BLOCK) {
        const int r1 = r0 + ATT_BLOCK < T ? r0 + ATT_BLOCK : T, rows = r1 - r0;
        const float *pb = p + (size_t)r0 * T;           /* (rows, T), keys 0..r1-1 */
        const float *dob = dout + qo + (size_t)r0 * QD; /* (rows, D) stride QD */
        st = plan.be->gemm(0, 1, rows, r1, D, 1.0f, dob, QD, v + ko, KD, 0.0f, ds, T);
        if (!st) st = plan.be->gemm(1, 0, r1, D, rows, 1.0f, pb, T, dob, QD, 1.0f, dv + ko, KD);
        if (st) break;
        for (int t = r0; t < r1; t++) {
          float *drow = ds + (size_t)(t - r0) * T;
          const float *prow = p + (size_t)t * T;
          double dot = 0.0;
#pragma omp simd reduction(+ : dot)
          for (int j = 0; j <= t; j++) dot += (double)drow[j] * prow[j];
#pragma omp simd
          for (int j = 0; j <= t; j++) drow[j] = prow[j] * (drow[j] - (float)dot);
          for (int j = t + 1; j < r1; j++) drow[j] = 0.0f;
        }
        st = plan.be->gemm(0, 0, rows, D, r1, plan.scale, ds, T, k + ko, KD, 0.0f,
                           dq + qo + (size_t)r0 * QD, QD);
        if (!st)
          st = plan.be->gemm(1, 0, r1, D, rows, plan.scale, ds, T, q + qo + (size_t)r0 * QD, QD,
                             1.0f, dk + ko, KD);
      }
    }
    attention_record(&plan, st);
  }
  GORP_CALL(attention_end(&plan));
  return GORP_OK;
}

void swiglu_forward(float *h, const float *g, const float *u, int N) {
#pragma omp parallel for simd schedule(static) if (N >= OPS_PARALLEL_MIN)
  for (int i = 0; i < N; i++) {
    const float s = 1.0f / (1.0f + exp_fast(-g[i]));
    h[i] = g[i] * s * u[i];
  }
}

void swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, int N) {
#pragma omp parallel for simd schedule(static)
  for (int i = 0; i < N; i++) {
    const float s = 1.0f / (1.0f + exp_fast(-g[i]));
    du[i] = dh[i] * g[i] * s;
    dg[i] = dh[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
  }
}

/* max of row (V): the shift that keeps exp from overflowing */
static float row_max(const float *row, int V) {
  float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
  for (int j = 0; j < V; j++) mx = row[j] > mx ? row[j] : mx;
  return mx;
}

/* sum_j exp(row[j] - mx) of row (V), in double */
static double row_sum_exp(const float *row, int V, float mx) {
  double sum = 0.0;
#pragma omp simd reduction(+ : sum)
  for (int j = 0; j < V; j++) sum += exp_fast(row[j] - mx);
  return sum;
}

double crossentropy_forward(int *n_targets, const float *logits, const int *targets,
                            const float *weights, int N, int V) {
  double total = 0.0;
  int n = 0;
#pragma omp parallel
  {
    double part = 0.0;
    int np = 0;
#pragma omp for schedule(static)
    for (int i = 0; i < N; i++) {
      if (targets[i] < 0) continue;
      const float *row = logits + (size_t)i * V;
      const float mx = row_max(row, V);
      const double sum = row_sum_exp(row, V, mx);
      part += (weights ? weights[i] : 1.0) * (log(sum) + mx - row[targets[i]]);
      np++;
    }
    /* partial sums joined in thread order: deterministic for a given thread count */
    const int nt = omp_get_num_threads();
    for (int t = 0; t < nt; t++) {
#pragma omp barrier
      if (t == omp_get_thread_num()) {
        total += part;
        n += np;
      }
    }
  }
  *n_targets = n;
  return total;
}

void crossentropy_backward(float *logits, const int *targets, const float *weights, int N, int V,
                           float div) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < N; i++) {
    float *row = logits + (size_t)i * V;
    if (targets[i] < 0) {
      memset(row, 0, (size_t)V * sizeof(float));
      continue;
    }
    const float mx = row_max(row, V);
    const double sum = row_sum_exp(row, V, mx);
    const double scale = (weights ? weights[i] : 1.0) / div;
    const float inv = (float)(scale / sum);
#pragma omp simd
    for (int j = 0; j < V; j++) row[j] = exp_fast(row[j] - mx) * inv;
    row[targets[i]] -= (float)scale;
  }
}

void dropout_rows(float *y, const float *x, const uint64_t *row_keys, int N, int in, int first,
                  float p, int add) {
  const uint32_t drop_below = (uint32_t)(p * 65536.0f + 0.5f);
  const float inv = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if ((size_t)N * in >= OPS_PARALLEL_MIN)
  for (int n = 0; n < N; n++) {
    const float *xr = x + (size_t)n * in;
    float *yr = y + (size_t)n * in;
    for (int g = first; g < first + in;) {
      const uint64_t bits = rng_bits_keyed(row_keys[n], (uint64_t)g / 4);
      for (int j = g % 4; j < 4 && g < first + in; j++, g++) {
        const float f = (uint32_t)(bits >> (16 * j) & 0xffffu) >= drop_below ? inv : 0.0f;
        const int i = g - first;
        yr[i] = add ? yr[i] + xr[i] * f : xr[i] * f;
      }
    }
  }
}

void rows_gather(float *out, const float *in, const int *rows, int R, int C) {
#pragma omp parallel for schedule(static) if ((size_t)R * C >= OPS_PARALLEL_MIN)
  for (int r = 0; r < R; r++)
    memcpy(out + (size_t)r * C, in + (size_t)rows[r] * C, (size_t)C * sizeof(float));
}

void rows_scatter(float *out, const float *in, const int *rows, int R, int C) {
#pragma omp parallel for schedule(static) if ((size_t)R * C >= OPS_PARALLEL_MIN)
  for (int r = 0; r < R; r++)
    memcpy(out + (size_t)rows[r] * C, in + (size_t)r * C, (size_t)C * sizeof(float));
}

void adamw_update(float *params, float *m, float *v, const float *grads, size_t n, adamw_hyper h) {
  const float b1 = h.beta1, b2 = h.beta2;
  const double bc1 = 1.0 - pow(b1, (double)h.step), bc2 = 1.0 - pow(b2, (double)h.step);
  const float step_size = (float)(h.lr / bc1), bc2_sqrt = (float)sqrt(bc2);
  const float decay = 1.0f - h.lr * h.weight_decay;
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; i++) {
    const float g = grads[i];
    params[i] *= decay;
    m[i] += (g - m[i]) * (1.0f - b1); /* torch: exp_avg.lerp_(grad, 1 - beta1) */
    v[i] = v[i] * b2 + (1.0f - b2) * g * g;
    const float denom = sqrtf(v[i]) / bc2_sqrt + h.eps;
    params[i] -= step_size * (m[i] / denom);
  }
}
