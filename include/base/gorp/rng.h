/* Counter-based random numbers: every value is a pure function of (seed, stream, index), so
 * results do not depend on the rank layout and a resumed run continues the same stream.
 * Not for: cryptography. */
#ifndef GORP_RNG_H
#define GORP_RNG_H

#include "gorp/hostdev.h"

#include <stdint.h>

/* Streams keep unrelated uses of one seed apart. */
enum { RNG_STREAM_INIT = 1, RNG_STREAM_SHUFFLE = 2, RNG_STREAM_DROPOUT = 3, RNG_STREAM_SVD = 4 };
enum { RNG_STREAM_SYNTH = 5 }; /* the synthetic suite's generator (synth.c) */

/* 64 well-mixed bits for (seed, stream, a, b). */
uint64_t rng_bits(uint64_t seed, uint64_t stream, uint64_t a, uint64_t b);
/* Uniform in [0, 1). */
double rng_uniform(uint64_t seed, uint64_t stream, uint64_t a, uint64_t b);
/* The same draws split in two: rng_bits_keyed(rng_key(seed, stream, a), b) equals
 * rng_bits(seed, stream, a, b); a loop over b computes the key once (LoRA dropout masks). */
uint64_t rng_key(uint64_t seed, uint64_t stream, uint64_t a);

/* splitmix64's finalizer, the generator's one mixing step. Inline with rng_bits_keyed so that the
 * GPU draws the CPU's bits (dropout masks: kernels.h's dropout_rows and its CUDA kernel). */
static inline GORP_HOST_DEVICE uint64_t rng_mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static inline GORP_HOST_DEVICE uint64_t rng_bits_keyed(uint64_t key, uint64_t b) {
  return rng_mix64(key ^ b);
}
/* Standard normal (Box-Muller on two counters). */
double rng_normal(uint64_t seed, uint64_t stream, uint64_t a, uint64_t b);

/* perm (n) = a permutation of 0..n-1 that depends only on (seed, key) (Fisher-Yates). */
void rng_permutation(int *perm, int n, uint64_t seed, uint64_t key);

#endif
