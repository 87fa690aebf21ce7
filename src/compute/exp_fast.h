/* exp_fast, shared by the CPU kernels (kernels.c) and the CUDA ones (cuda/kernels.cu), so that a
 * softmax, SwiGLU or cross-entropy computes the same bits on both (with nvcc's --fmad=false).
 * Internal to the compute layer. Not for: anything but those two files. */
#ifndef GORP_EXP_FAST_H
#define GORP_EXP_FAST_H

#include "gorp/hostdev.h"

#include <stdint.h>
#include <string.h>

/* e^x in float without a library call, so that loops over it vectorize (omp simd): x = n ln2 + r
 * with |r| <= ln2/2, e^r by Cephes' expf polynomial, 2^n written into the exponent bits.
 * Relative error below 2e-7 (expf's own is ~1e-7); x is clamped to [-87, 88], so e^x for
 * x < -87 is 1.6e-38 instead of 0 or a denormal, which no sum or product here can tell apart. */
static inline GORP_HOST_DEVICE float exp_fast(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  const float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f; /* round to nearest */
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;   /* ln 2 in two parts */
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = ((int32_t)n + 127) * (1 << 23);
  float scale;
  memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

#endif
