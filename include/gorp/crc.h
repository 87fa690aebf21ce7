/* Checksums of tensors as stored in gorp's HDF5 files (model files and checkpoints).
 * The checksum of a tensor is the zlib CRC-32 of its row-major little-endian float32 bytes, so it
 * names the logical tensor and does not depend on the rank layout that wrote it.
 * Not for: checksums of non-little-endian data. */
#ifndef GORP_CRC_H
#define GORP_CRC_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32 of n bytes (zlib's crc32, initial value 0): float64 datasets use it on their bytes. */
uint32_t crc32_bytes(const void *x, size_t n);
/* CRC-32 of the n floats x[0..n) (zlib's crc32, initial value 0). */
uint32_t crc32_floats(const float *x, size_t n);

#endif
