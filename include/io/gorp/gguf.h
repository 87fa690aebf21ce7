/* Reader for GGUF files (llama.cpp's and ollama's model format, versions 2 and 3, little-endian):
 * the header ("GGUF", version, tensor count, metadata count), the metadata key/value pairs, the
 * tensor infos (name, dims with ne[0] the contiguous one, ggml type, offset) and the data region,
 * which starts at the end of the tensor infos rounded up to general.alignment (default 32).
 * Opening validates every count, length, type, dimension and offset against the file's size and
 * the caps below, so that a hostile file is refused (GORP_EINPUT, naming the file and the key or
 * tensor) before anything is allocated from it; tensor data is read on demand, one tensor at a
 * time. Values are dequantized to float32 from F32, F16, BF16, Q8_0, Q4_0 and Q4_1 (ggml's block
 * layouts, the same arithmetic as ggml's dequantize_row_*); any other ggml type is refused by
 * name when the file is opened.
 * gguf_import builds gorp's LLaMA model from such a file (gguf_import.c): the config from the
 * llama.* metadata, the tensors by llama.cpp's names with convert_hf_to_gguf's q/k row permutation
 * undone, so that the model equals the Hugging Face one the file was converted from.
 * Not for: writing GGUF files, the tokenizer or chat template in the metadata, other
 * architectures than llama. */
#ifndef GORP_GGUF_H
#define GORP_GGUF_H

#include "gorp/model.h"

struct modelfile_counts;

#include <stddef.h>
#include <stdint.h>

/* Caps of what a file may declare (far above llama.cpp's real files: ~40 keys, 3 + 9 per layer
 * tensors): metadata entries, tensors, dims of a tensor, bytes of a tensor name (ggml's
 * GGML_MAX_NAME less its NUL) and of a key. */
enum {
  GGUF_MAX_KV = 1 << 12,
  GGUF_MAX_TENSORS = 1 << 20,
  GGUF_MAX_DIMS = 4,
  GGUF_MAX_NAME = 63,
  GGUF_MAX_KEY = 65535
};

/* The metadata value types of the format. */
typedef enum gguf_value_type {
  GGUF_U8 = 0,
  GGUF_I8 = 1,
  GGUF_U16 = 2,
  GGUF_I16 = 3,
  GGUF_U32 = 4,
  GGUF_I32 = 5,
  GGUF_F32 = 6,
  GGUF_BOOL = 7,
  GGUF_STRING = 8,
  GGUF_ARRAY = 9,
  GGUF_U64 = 10,
  GGUF_I64 = 11,
  GGUF_F64 = 12
} gguf_value_type;

/* 1 for the signed integer types (their values are in gguf_kv.i, the unsigned ones' in u). */
int gguf_type_signed(gguf_value_type t);

/* One metadata entry. Scalars are kept (integers in i or u, floats in f, a string in str); an
 * array only by its element type and count, its elements skipped. */
typedef struct gguf_kv {
  char *key;
  gguf_value_type type;
  int64_t i;  /* signed integers and bool */
  uint64_t u; /* unsigned integers */
  double f;   /* F32, F64 */
  char *str;  /* STRING: NUL-terminated copy (a NUL inside the value is refused) */
  gguf_value_type arr_type;
  uint64_t arr_n; /* ARRAY: element type and count */
} gguf_kv;

typedef struct gguf_tensor {
  char name[GGUF_MAX_NAME + 1];
  int ndim;
  uint64_t ne[GGUF_MAX_DIMS]; /* ne[0] is the row length (contiguous), ne[1] the rows, ... */
  uint32_t type;              /* ggml_type: 0 F32, 1 F16, 2 Q4_0, 3 Q4_1, 8 Q8_0, 30 BF16 */
  uint64_t offset;            /* in the data region, a multiple of the alignment */
  uint64_t numel, nbytes;
} gguf_tensor;

typedef struct gguf_file {
  char *path; /* for messages */
  int fd;
  uint64_t size;
  uint32_t version;
  uint32_t alignment;
  uint64_t data_start; /* file offset of the data region */
  int n_kv;
  gguf_kv *kv; /* in file order */
  int n_tensors;
  gguf_tensor *tensors; /* in file order */
} gguf_file;

/* Opens path and validates all of it but the tensor values (see above). Errors name the file and
 * the key or tensor; f is left closed on failure. */
int gguf_open(gguf_file *f, const char *path);
void gguf_close(gguf_file *f);
/* The entry with this key, or NULL. */
const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key);
/* The tensor with this name, or NULL. */
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);
/* ggml's name of a tensor type ("Q4_K"), or NULL for an id ggml does not define. */
const char *gguf_type_name(uint32_t type);
/* Reads tensor t of f into out (t->numel floats), dequantized. */
int gguf_read_f32(const gguf_file *f, const gguf_tensor *t, float *out);

/* Converts the GGUF file path of a llama model (general.architecture "llama") into the model file
 * out (modelfile.h), dequantized to float32, one tensor in memory at a time: the config from
 * llama.block_count, embedding_length, feed_forward_length, attention.head_count(_kv),
 * attention.key_length, rope.dimension_count, rope.freq_base, attention.layer_norm_rms_epsilon,
 * context_length (absent optional keys take Hugging Face's defaults), the vocabulary size from
 * token_embd.weight (llama.vocab_size and tokenizer.ggml.tokens must agree with it), tied
 * embeddings when output.weight is absent; then every tensor, exactly once, with its exact shape.
 * Rope scaling and experts are refused. out is published atomically once every tensor was written;
 * on failure it is left as it was. *counts: what was written. */
int gguf_import(const char *path, const char *out, struct modelfile_counts *counts);

#endif
