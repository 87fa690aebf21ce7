/* CRC-32 of tensors, whole or from the parts of their runs (see crc.h). */
#include "gorp/crc.h"

#include <zlib.h>

/* The stored checksum is defined on little-endian bytes; on such a host those are the floats'
 * own bytes. A big-endian port would byte-swap here. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gorp assumes a little-endian host"
#endif

/* crc32_combine takes the length as z_off_t: parts of tensors over 2 GiB need it 64-bit */
_Static_assert(sizeof(z_off_t) >= 8, "zlib's z_off_t must be 64-bit");

uint32_t crc32_bytes(const void *x, size_t n) {
  /* crc32_z takes a size_t length: tensors over 4 GiB (a 70B model's embedding) need no split */
  return (uint32_t)crc32_z(0, (const Bytef *)x, n);
}

uint32_t crc32_floats(const float *x, size_t n) {
  return crc32_bytes(x, n * sizeof(float));
}

/* zlib's crc32 is ~L(~c, x): the linear register update L started from the inverted previous
 * value and inverted at the end. crc32_combine(a, b, n) = L(a, 0^n) ^ b for every a, so with b = 0
 * it moves a register value past n zero bytes in O(log n). */
static uint32_t past_zeros(uint32_t reg, uint64_t n) {
  return (uint32_t)crc32_combine(reg, 0, (z_off_t)n);
}

uint32_t crc32_part(const void *x, size_t n, uint64_t off, uint64_t total) {
  /* starting from 0xffffffff, crc32_z runs L from 0: its result inverted is L(0, x) */
  const uint32_t linear = (uint32_t)crc32_z(0xffffffffUL, (const Bytef *)x, n) ^ 0xffffffffu;
  return past_zeros(linear, total - off - n);
}

uint32_t crc32_from_parts(uint32_t parts, uint64_t total) {
  /* crc32(m) = ~L(0xffffffff, m) = L(0, m) ^ ~L(0xffffffff, 0^total), and L(0, m) is the XOR of
   * the parts because L(0, .) is linear in the message */
  return parts ^ ~past_zeros(0xffffffffu, total);
}
