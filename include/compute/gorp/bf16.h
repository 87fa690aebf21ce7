/* bfloat16 storage and the bf16 x bf16 -> fp32 matrix product for frozen weights kept in bf16.
 *
 * A bf16 is the upper half of an IEEE fp32 (sign, 8 exponent bits, 7 mantissa bits), stored as a
 * uint16_t: widening is exact, narrowing rounds to nearest with ties to even and keeps NaN a NaN
 * (quiet, sign kept), infinities and denormals are rounded like any other value (no flushing).
 *
 * bf16_gemm_xw / bf16_gemm_wx compute the row-major C (m, n) = alpha op(A) op(B) + beta C of
 * backend.h's gemm, argument for argument, with one operand in bf16 (the frozen weight) and the
 * other fp32 (activations), which is rounded to bf16 on the fly; the products of two bf16 values
 * are exact in fp32 and are summed in fp32. Two paths compute this:
 * - BF16_PATH_ONEDNN: oneDNN matmul primitives on the OpenMP threads (AVX512-BF16 or AMX kernels
 *   where the CPU has them), one primitive per shape, created on first use and kept in the cache;
 * - BF16_PATH_SGEMM: the fallback for CPUs without bf16 instructions: both operands widened to
 *   fp32 (the fp32 one first rounded through bf16, so that both paths multiply the same values)
 *   and backend.h's gemm.
 * - BF16_PATH_SPLIT: oneDNN for products with fewer than BF16_SPLIT_ROWS rows of activations
 *   (decoding: memory-bound, where reading 2-byte weights pays), the fallback for the rest.
 * BF16_PATH_AUTO takes oneDNN where oneDNN reports AMX, SPLIT where it reports AVX512-BF16 without
 * AMX, the fallback otherwise (ONEDNN_MAX_CPU_ISA lowers what it reports). Measured on an Intel
 * Xeon with AVX512-BF16 and no AMX (bench/bench_bf16_gemm.c, BENCHMARKS.md): oneDNN's bf16 kernel
 * ran at 81 GFLOP/s on one thread and OpenBLAS's fp32 SGEMM at ~150 with the weight widened, while
 * for one row oneDNN took half the fallback's time. The fallback widens the weight in blocks of C's
 * columns (or rows), so its scratch stays at 8 MB whatever the weight's size.
 *
 * Not for: trainable weights by default (their products and gradients stay fp32, backend.h, unless
 * model.trained_products = bf16 sends them through bf16_gemm_ff), fp16, or sharing
 * one cache between threads (give each thread its own; a call inside an OpenMP parallel region
 * runs on that thread alone). */
#ifndef GORP_BF16_H
#define GORP_BF16_H

#include "gorp/err.h"
#include "gorp/hostdev.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef uint16_t bf16;

/* Rounds x to the nearest bf16, ties to even; a NaN stays a (quiet) NaN with its sign. The CUDA
 * kernels round with this very function (GORP_HOST_DEVICE). */
GORP_HOST_DEVICE static inline bf16 bf16_from_f32(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof(u));
  if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16)((u >> 16) | 0x0040u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (bf16)(u >> 16);
}

/* The fp32 value of x (exact). */
GORP_HOST_DEVICE static inline float bf16_to_f32(bf16 x) {
  const uint32_t u = (uint32_t)x << 16;
  float f;
  memcpy(&f, &u, sizeof(f));
  return f;
}

/* out (n) = in (n) rounded to bf16; on the OpenMP threads when n is large. */
void bf16_round(bf16 *out, const float *in, size_t n);
/* out (n) = in (n) widened to fp32; on the OpenMP threads when n is large. */
void bf16_widen(float *out, const bf16 *in, size_t n);

typedef enum bf16_path {
  BF16_PATH_AUTO = 0,   /* oneDNN where the CPU has bf16 instructions, else the fallback */
  BF16_PATH_ONEDNN = 1, /* oneDNN matmul (works on any CPU, converting where it has no bf16) */
  BF16_PATH_SGEMM = 2,  /* widen to fp32 and backend.h's gemm */
  BF16_PATH_SPLIT = 3   /* oneDNN below BF16_SPLIT_ROWS rows of activations, SGEMM above */
} bf16_path;

/* Rows of activations from which BF16_PATH_SPLIT takes the fallback. */
enum { BF16_SPLIT_ROWS = 64 };

/* The primitives created so far, one per (shape, transposes, leading dimensions, alpha, beta), and
 * the scratch the conversions need. Opaque; bf16_gemm_create makes one, bf16_gemm_free frees it. */
typedef struct bf16_gemm_cache bf16_gemm_cache;

/* *cache: a new, empty cache computing with path (BF16_PATH_AUTO resolved here). */
int bf16_gemm_create(bf16_gemm_cache **cache, bf16_path path);
void bf16_gemm_free(bf16_gemm_cache *cache);
/* The path the cache computes with: BF16_PATH_ONEDNN, BF16_PATH_SGEMM or BF16_PATH_SPLIT. */
bf16_path bf16_gemm_path(const bf16_gemm_cache *cache);
/* How a path computes, in words: "oneDNN", "the sgemm fallback", "oneDNN below 64 rows, the sgemm
 * fallback from 64". */
const char *bf16_path_name(bf16_path path);
/* oneDNN primitives created so far (a call whose shape is cached creates none), and the name of
 * the kernel the last call ran ("sgemm" on the fallback path, "" before any call). */
long bf16_gemm_n_created(const bf16_gemm_cache *cache);
const char *bf16_gemm_kernel(const bf16_gemm_cache *cache);

/* C (m, n) = alpha op(A) op(B) + beta C with A fp32 (activations, rounded to bf16) and B bf16
 * (the weight): op(A) (m, k), op(B) (k, n), op(X) = X^T when its trans flag is set. beta = 0
 * ignores C's old values (NaN included). The model's forward x W^T is trans_b = 1, its backward
 * dX = dY W trans_b = 0. */
int bf16_gemm_xw(bf16_gemm_cache *cache, int trans_a, int trans_b, int m, int n, int k, float alpha,
                 const float *a, int lda, const bf16 *b, int ldb, float beta, float *c,
                 int ldc) GORP_WUR;
/* The same with A bf16 (the weight) and B fp32 (activations, rounded to bf16). */
int bf16_gemm_wx(bf16_gemm_cache *cache, int trans_a, int trans_b, int m, int n, int k, float alpha,
                 const bf16 *a, int lda, const float *b, int ldb, float beta, float *c,
                 int ldc) GORP_WUR;
/* The same with both operands fp32, both rounded to bf16 (a trained weight's products under
 * model.trained_products = bf16, as torch.autocast computes them: B is rounded whole into the
 * cache's scratch on every call, so the fp32 master is the only copy kept). */
int bf16_gemm_ff(bf16_gemm_cache *cache, int trans_a, int trans_b, int m, int n, int k, float alpha,
                 const float *a, int lda, const float *b, int ldb, float beta, float *c,
                 int ldc) GORP_WUR;

#endif
