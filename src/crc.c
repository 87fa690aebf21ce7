/* CRC-32 of float32 tensors (see crc.h). */
#include "gorp/crc.h"

#include <zlib.h>

/* The stored checksum is defined on little-endian bytes; on such a host those are the floats'
 * own bytes. A big-endian port would byte-swap here. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gorp assumes a little-endian host"
#endif

uint32_t crc32_bytes(const void *x, size_t n) {
  /* crc32_z takes a size_t length: tensors over 4 GiB (a 70B model's embedding) need no split */
  return (uint32_t)crc32_z(0, (const Bytef *)x, n);
}

uint32_t crc32_floats(const float *x, size_t n) {
  return crc32_bytes(x, n * sizeof(float));
}
