/* Checksums of tensors as stored in gorp's HDF5 files (model files and checkpoints).
 * The checksum of a tensor is the zlib CRC-32 of its row-major little-endian bytes, so it names
 * the logical tensor and does not depend on the rank layout that wrote it.
 * A layout that scatters the tensor over ranks gets the same checksum without gathering the data:
 * CRC-32 is affine over GF(2), so each contiguous run of the tensor's bytes contributes a 32-bit
 * part (its own CRC moved to its place with zlib's crc32_combine), the parts of runs that tile the
 * tensor XOR together in any order (one MPI_BXOR all-reduce), and crc32_from_parts turns the
 * result into the tensor's CRC-32.
 * Not for: checksums of non-little-endian data; the MPI side (h5io.c). */
#ifndef GORP_CRC_H
#define GORP_CRC_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32 of n bytes (zlib's crc32, initial value 0): float64 datasets use it on their bytes. */
uint32_t crc32_bytes(const void *x, size_t n);
/* CRC-32 of the n floats x[0..n) (zlib's crc32, initial value 0). */
uint32_t crc32_floats(const float *x, size_t n);

/* The part of the CRC-32 of a total-byte message that its bytes [off, off + n) = x contribute:
 * the linear (unconditioned) CRC of x followed by total - off - n zero bytes. */
uint32_t crc32_part(const void *x, size_t n, uint64_t off, uint64_t total);
/* The CRC-32 of a total-byte message from the XOR of the parts of runs that cover each of its
 * bytes exactly once (a byte covered twice or never gives a wrong checksum). */
uint32_t crc32_from_parts(uint32_t parts, uint64_t total);

#endif
