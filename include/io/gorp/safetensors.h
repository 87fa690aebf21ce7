/* Reader and writer for Hugging Face's safetensors format: an 8-byte little-endian header length N,
 * N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then
 * the data. Opening reads and validates the whole header; tensor data is read on demand, one tensor
 * at a time, so a 10 GB shard is never held in memory. Writing (safetensors_write.c) is float32
 * only: what gorp export-hf and export-peft produce. Not for: reading values of dtypes other than
 * F32, F16 and BF16 (other dtypes are known by size only, to validate their offsets), or writing
 * other dtypes. */
#ifndef GORP_SAFETENSORS_H
#define GORP_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

enum { SAFETENSORS_MAX_DIM = 8 };

typedef struct safetensors_tensor {
  char *name;
  const char *dtype; /* as spelled in the file: "F32", "BF16", "I64", ... */
  int ndim;
  int64_t shape[SAFETENSORS_MAX_DIM];
  size_t numel;
  uint64_t begin, end; /* byte range inside the data region, end - begin = numel * dtype size */
} safetensors_tensor;

typedef struct safetensors_file {
  char *path; /* for messages */
  int fd;
  uint64_t data_start; /* file offset of the data region: 8 + N */
  uint64_t data_size;
  int n_tensors;
  safetensors_tensor *tensors; /* in header order */
} safetensors_file;

/* Opens path and validates its header: length within the file, JSON, known dtypes, offsets
 * inside the data region and consistent with shape and dtype. Errors name the file and tensor. */
int safetensors_open(safetensors_file *f, const char *path);
void safetensors_close(safetensors_file *f);
/* The tensor with this name, or NULL. */
const safetensors_tensor *safetensors_find(const safetensors_file *f, const char *name);
/* Reads tensor t of f into out (t->numel floats), converting F16 and BF16 exactly. Any other
 * dtype is an error naming the file and tensor. */
int safetensors_read_f32(const safetensors_file *f, const safetensors_tensor *t, float *out);

/* Reads a BF16 tensor t of f into out (t->numel values) as stored: the bf16 bits (little-endian,
 * as gorp's bf16.h holds them); any other dtype is an error naming the file and tensor. */
int safetensors_read_bf16(const safetensors_file *f, const safetensors_tensor *t, uint16_t *out);
/* Exact conversions of one IEEE half / bfloat16 value (subnormals, infinities, NaN, -0). */
float safetensors_f16_to_f32(uint16_t h);
float safetensors_bf16_to_f32(uint16_t h);

/* One tensor to write: numel = the product of shape's ndim entries floats, row-major. */
typedef struct safetensors_entry {
  const char *name;
  int ndim;
  int64_t shape[SAFETENSORS_MAX_DIM];
  const float *data;
} safetensors_entry;
/* The bytes safetensors_write_f32 gives e's data. */
uint64_t safetensors_entry_bytes(const safetensors_entry *e);
/* Writes the n tensors of e, in that order, as F32 into path: the header (with __metadata__
 * {"format": "pt"}, which transformers requires) padded with spaces to a multiple of 8 bytes, then
 * the data. path.tmp is written, checked and published (fs_publish), so path is either the old
 * file or the complete new one; on failure path.tmp is removed. */
int safetensors_write_f32(const char *path, const safetensors_entry *e, int n);

#endif
