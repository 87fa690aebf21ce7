/* Counter-based generator (see rng.h): splitmix64 finalizers (rng_mix64) chained over the key
 * words. */
#include "gorp/rng.h"

#include <math.h>

uint64_t rng_key(uint64_t seed, uint64_t stream, uint64_t a) {
  return rng_mix64(rng_mix64(rng_mix64(seed) ^ stream) ^ a);
}

uint64_t rng_bits(uint64_t seed, uint64_t stream, uint64_t a, uint64_t b) {
  return rng_bits_keyed(rng_key(seed, stream, a), b);
}

double rng_uniform(uint64_t seed, uint64_t stream, uint64_t a, uint64_t b) {
  return (double)(rng_bits(seed, stream, a, b) >> 11) * 0x1.0p-53;
}

double rng_normal(uint64_t seed, uint64_t stream, uint64_t a, uint64_t b) {
  double u1 = rng_uniform(seed, stream, a, 2 * b);
  double u2 = rng_uniform(seed, stream, a, 2 * b + 1);
  if (u1 < 1e-300) u1 = 1e-300;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void rng_permutation(int *perm, int n, uint64_t seed, uint64_t key) {
  for (int i = 0; i < n; i++) perm[i] = i;
  for (int i = n - 1; i > 0; i--) {
    int j = (int)(rng_bits(seed, RNG_STREAM_SHUFFLE, key, (uint64_t)i) % (uint64_t)(i + 1));
    int tmp = perm[i];
    perm[i] = perm[j];
    perm[j] = tmp;
  }
}
