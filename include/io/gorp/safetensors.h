/* Reader for Hugging Face's safetensors format: an 8-byte little-endian header length N, N bytes of
 * JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the data.
 * Opening reads and validates the whole header; tensor data is read on demand, one tensor at a
 * time, so a 10 GB shard is never held in memory.
 * Not for: writing safetensors files, or reading values of dtypes other than F32, F16 and BF16
 * (other dtypes are known by size only, to validate their offsets). */
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

/* Exact conversions of one IEEE half / bfloat16 value (subnormals, infinities, NaN, -0). */
float safetensors_f16_to_f32(uint16_t h);
float safetensors_bf16_to_f32(uint16_t h);

#endif
