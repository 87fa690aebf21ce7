/* GGUF reader (see gguf.h): the header, metadata and tensor infos parsed through a bounds-checked
 * cursor over pread (every length and count is checked against the bytes left in the file before
 * it is used or allocated), then tensor values read on demand and dequantized block by block.
 * Reads values as little-endian, like crc.c and safetensors.c assume.
 * Not for: mapping tensors to gorp's model (gguf_import.c). */
#include "gorp/gguf.h"

#include "gorp/err.h"
#include "gorp/fsutil.h"
#include "gorp/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { GGUF_DEFAULT_ALIGNMENT = 32, CURSOR_BUF = 1 << 16 };

/* ggml's type ids and names (ggml.h's enum ggml_type; ids 4, 5, 31-33 and 36-38 are retired). */
static const char *const type_names[] = {
    [0] = "F32",     [1] = "F16",      [2] = "Q4_0",   [3] = "Q4_1",    [6] = "Q5_0",
    [7] = "Q5_1",    [8] = "Q8_0",     [9] = "Q8_1",   [10] = "Q2_K",   [11] = "Q3_K",
    [12] = "Q4_K",   [13] = "Q5_K",    [14] = "Q6_K",  [15] = "Q8_K",   [16] = "IQ2_XXS",
    [17] = "IQ2_XS", [18] = "IQ3_XXS", [19] = "IQ1_S", [20] = "IQ4_NL", [21] = "IQ3_S",
    [22] = "IQ2_S",  [23] = "IQ4_XS",  [24] = "I8",    [25] = "I16",    [26] = "I32",
    [27] = "I64",    [28] = "F64",     [29] = "IQ1_M", [30] = "BF16",   [34] = "TQ1_0",
    [35] = "TQ2_0",  [39] = "MXFP4"};

/* The types gorp dequantizes: values and bytes per block (ggml-common.h's layouts). Q8_0: f16 d,
 * int8 q[32], x = q d. Q4_0: f16 d, 16 bytes of nibbles, x = (q - 8) d. Q4_1: f16 d, f16 m, 16
 * bytes of nibbles, x = q d + m. A nibble block holds values 0-15 in the low nibbles, 16-31 in the
 * high ones. */
enum { T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q4_1 = 3, T_Q8_0 = 8, T_BF16 = 30 };
static const struct {
  uint32_t type;
  unsigned block, bytes;
} readable[] = {{T_F32, 1, 4},    {T_F16, 1, 2},    {T_BF16, 1, 2},
                {T_Q8_0, 32, 34}, {T_Q4_0, 32, 18}, {T_Q4_1, 32, 20}};

const char *gguf_type_name(uint32_t type) {
  return type < sizeof(type_names) / sizeof(type_names[0]) ? type_names[type] : NULL;
}

static int read_exact(const gguf_file *f, uint64_t offset, void *buf, size_t n) {
  return fs_pread_exact(f->fd, offset, buf, n, f->path);
}

/* ------------------------------------------------------------------------------------------ */
/* the cursor: sequential reads of the header, buffered, never past the end of the file */

typedef struct cursor {
  const gguf_file *f;
  uint64_t pos;       /* the next byte to read */
  uint64_t buf_start; /* file offset of buf[0] */
  size_t buf_len;
  const char *what; /* what is being read, for messages: "metadata entry 3 (general.name)" */
  unsigned char buf[CURSOR_BUF];
} cursor;

static int need(const cursor *c, uint64_t n) {
  if (n > c->f->size - c->pos)
    GORP_ERR(GORP_EINPUT,
             "%s: truncated: %s needs %llu bytes at byte %llu, but the file ends at byte %llu",
             c->f->path, c->what, (unsigned long long)n, (unsigned long long)c->pos,
             (unsigned long long)c->f->size);
  return GORP_OK;
}

static int cur_read(cursor *c, void *dst, size_t n) {
  GORP_CALL(need(c, n));
  unsigned char *out = dst;
  while (n) {
    if (c->pos < c->buf_start || c->pos >= c->buf_start + c->buf_len) {
      const uint64_t left = c->f->size - c->pos;
      c->buf_start = c->pos;
      c->buf_len = left < CURSOR_BUF ? (size_t)left : CURSOR_BUF;
      GORP_CALL(read_exact(c->f, c->pos, c->buf, c->buf_len));
    }
    const size_t at = (size_t)(c->pos - c->buf_start),
                 k = c->buf_len - at < n ? c->buf_len - at : n;
    memcpy(out, c->buf + at, k);
    out += k;
    c->pos += k;
    n -= k;
  }
  return GORP_OK;
}

static int cur_skip(cursor *c, uint64_t n) {
  GORP_CALL(need(c, n));
  c->pos += n;
  return GORP_OK;
}

static int cur_u32(cursor *c, uint32_t *v) {
  return cur_read(c, v, sizeof(*v));
}

static int cur_u64(cursor *c, uint64_t *v) {
  return cur_read(c, v, sizeof(*v));
}

/* A string's length, at most max (its bytes must also be in the file). */
static int cur_strlen(cursor *c, uint64_t max, uint64_t *n) {
  GORP_CALL(cur_u64(c, n));
  if (*n > max)
    GORP_ERR(GORP_EINPUT, "%s: %s: a string of %llu bytes is over the limit of %llu", c->f->path,
             c->what, (unsigned long long)*n, (unsigned long long)max);
  return need(c, *n);
}

/* A string into a new NUL-terminated buffer (*s, freed by the caller; NULL on failure). */
static int cur_string(cursor *c, uint64_t max, char **s) {
  *s = NULL;
  uint64_t n;
  GORP_CALL(cur_strlen(c, max, &n));
  char *str;
  GORP_ALLOC(str, n + 1, "a GGUF string");
  int rc = cur_read(c, str, (size_t)n);
  if (!rc && strlen(str) != n)
    rc = GORP_ERROR(GORP_EINPUT, "%s: %s: NUL byte inside a string", c->f->path, c->what);
  if (rc) {
    free(str);
    return rc;
  }
  *s = str;
  return GORP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* metadata */

/* Bytes of one value of a fixed-size type; 0 for STRING, ARRAY and unknown types. */
static size_t value_size(uint32_t type) {
  static const size_t size[] = {[GGUF_U8] = 1,  [GGUF_I8] = 1,  [GGUF_U16] = 2, [GGUF_I16] = 2,
                                [GGUF_U32] = 4, [GGUF_I32] = 4, [GGUF_F32] = 4, [GGUF_BOOL] = 1,
                                [GGUF_U64] = 8, [GGUF_I64] = 8, [GGUF_F64] = 8};
  return type < sizeof(size) / sizeof(size[0]) ? size[type] : 0;
}

static int check_type(const cursor *c, uint32_t type) {
  if (type > GGUF_F64)
    GORP_ERR(GORP_EINPUT, "%s: %s has value type %u, which GGUF does not define (0-12)", c->f->path,
             c->what, type);
  return GORP_OK;
}

int gguf_type_signed(gguf_value_type t) {
  return t == GGUF_I8 || t == GGUF_I16 || t == GGUF_I32 || t == GGUF_I64;
}

/* A scalar of a fixed-size type into kv's i, u or f (little-endian, sign-extended). */
static int read_scalar(cursor *c, gguf_kv *kv) {
  const size_t n = value_size(kv->type);
  unsigned char b[8];
  GORP_CALL(cur_read(c, b, n));
  uint64_t u = 0;
  for (size_t k = n; k-- > 0;) u = u << 8 | b[k];
  if (kv->type == GGUF_BOOL && u > 1)
    GORP_ERR(GORP_EINPUT, "%s: %s: a bool must be 0 or 1, got %llu", c->f->path, c->what,
             (unsigned long long)u);
  if (kv->type == GGUF_F32) {
    float f;
    memcpy(&f, b, 4);
    kv->f = f;
  } else if (kv->type == GGUF_F64) {
    memcpy(&kv->f, b, 8);
  } else if (gguf_type_signed(kv->type) || kv->type == GGUF_BOOL) {
    const unsigned shift = (unsigned)(64 - 8 * n); /* the sign bit to bit 63 and back */
    kv->i = (int64_t)(u << shift) >> shift;
  } else {
    kv->u = u;
  }
  return GORP_OK;
}

/* An array: its element type and count, its elements skipped (strings one by one). */
static int read_array(cursor *c, gguf_kv *kv) {
  uint32_t type;
  GORP_CALL(cur_u32(c, &type));
  GORP_CALL(check_type(c, type));
  if (type == GGUF_ARRAY)
    GORP_ERR(GORP_EINPUT, "%s: %s is an array of arrays, which gorp does not read", c->f->path,
             c->what);
  kv->arr_type = (gguf_value_type)type;
  GORP_CALL(cur_u64(c, &kv->arr_n));
  /* every element takes at least one byte (a string its 8-byte length) */
  const uint64_t least = type == GGUF_STRING ? 8 : value_size(type);
  if (kv->arr_n > (c->f->size - c->pos) / least)
    GORP_ERR(GORP_EINPUT, "%s: %s: %llu array elements cannot fit in the %llu bytes left",
             c->f->path, c->what, (unsigned long long)kv->arr_n,
             (unsigned long long)(c->f->size - c->pos));
  if (type != GGUF_STRING) return cur_skip(c, kv->arr_n * least);
  for (uint64_t k = 0; k < kv->arr_n; k++) {
    uint64_t n;
    GORP_CALL(cur_strlen(c, UINT64_MAX, &n));
    GORP_CALL(cur_skip(c, n));
  }
  return GORP_OK;
}

static int read_kv(cursor *c, int index, gguf_kv *kv) {
  char what[96];
  snprintf(what, sizeof(what), "the key of metadata entry %d", index);
  c->what = what;
  GORP_CALL(cur_string(c, GGUF_MAX_KEY, &kv->key));
  for (int j = 0; j < index; j++)
    if (!strcmp(c->f->kv[j].key, kv->key))
      GORP_ERR(GORP_EINPUT, "%s: metadata key '%s' appears twice", c->f->path, kv->key);
  char value[GGUF_MAX_NAME + 64];
  snprintf(value, sizeof(value), "the value of metadata key '%.*s'", GGUF_MAX_NAME, kv->key);
  c->what = value;
  uint32_t type;
  GORP_CALL(cur_u32(c, &type));
  GORP_CALL(check_type(c, type));
  kv->type = (gguf_value_type)type;
  if (type == GGUF_STRING) return cur_string(c, UINT64_MAX, &kv->str);
  if (type == GGUF_ARRAY) return read_array(c, kv);
  return read_scalar(c, kv);
}

/* general.alignment, when present: a power of two (the data region and every tensor's offset
 * are multiples of it). */
static int read_alignment(gguf_file *f) {
  f->alignment = GGUF_DEFAULT_ALIGNMENT;
  const gguf_kv *kv = gguf_find_kv(f, "general.alignment");
  if (!kv) return GORP_OK;
  if (kv->type != GGUF_U32)
    GORP_ERR(GORP_EINPUT, "%s: general.alignment must be a uint32 (type 4), got type %d", f->path,
             kv->type);
  if (!kv->u || kv->u & (kv->u - 1))
    GORP_ERR(GORP_EINPUT, "%s: general.alignment = %llu is not a power of two", f->path,
             (unsigned long long)kv->u);
  f->alignment = (uint32_t)kv->u;
  return GORP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* tensor infos */

static int type_layout(uint32_t type, unsigned *block, unsigned *bytes) {
  for (size_t i = 0; i < sizeof(readable) / sizeof(readable[0]); i++)
    if (readable[i].type == type) {
      *block = readable[i].block;
      *bytes = readable[i].bytes;
      return 1;
    }
  return 0;
}

static int read_tensor_info(cursor *c, int index, gguf_tensor *t) {
  const char *p = c->f->path;
  char what[GGUF_MAX_NAME + 64];
  snprintf(what, sizeof(what), "the name of tensor info %d", index);
  c->what = what;
  char *name;
  GORP_CALL(cur_string(c, GGUF_MAX_NAME, &name));
  memcpy(t->name, name, strlen(name) + 1);
  free(name);
  snprintf(what, sizeof(what), "the info of tensor %s", t->name);
  uint32_t ndim;
  GORP_CALL(cur_u32(c, &ndim));
  if (ndim < 1 || ndim > GGUF_MAX_DIMS)
    GORP_ERR(GORP_EINPUT, "%s: tensor %s has %u dimensions; GGUF allows 1 to %d", p, t->name, ndim,
             GGUF_MAX_DIMS);
  t->ndim = (int)ndim;
  t->numel = 1;
  for (int d = 0; d < t->ndim; d++) {
    GORP_CALL(cur_u64(c, &t->ne[d]));
    if (t->ne[d] > INT64_MAX || __builtin_mul_overflow(t->numel, t->ne[d], &t->numel))
      GORP_ERR(GORP_EINPUT, "%s: tensor %s: dimensions too large (dimension %d is %llu)", p,
               t->name, d, (unsigned long long)t->ne[d]);
  }
  GORP_CALL(cur_u32(c, &t->type));
  GORP_CALL(cur_u64(c, &t->offset));
  const char *type = gguf_type_name(t->type);
  if (!type)
    GORP_ERR(GORP_EINPUT, "%s: tensor %s has type id %u, which ggml does not define", p, t->name,
             t->type);
  unsigned block, bytes;
  if (!type_layout(t->type, &block, &bytes))
    GORP_ERR(GORP_EINPUT,
             "%s: tensor %s has type %s, which gorp cannot dequantize (supported: F32, F16, BF16, "
             "Q8_0, Q4_0, Q4_1)",
             p, t->name, type);
  if (t->ne[0] % block)
    GORP_ERR(GORP_EINPUT, "%s: tensor %s: row length %llu is not a multiple of %s's block of %u", p,
             t->name, (unsigned long long)t->ne[0], type, block);
  if (__builtin_mul_overflow(t->numel / block, (uint64_t)bytes, &t->nbytes))
    GORP_ERR(GORP_EINPUT, "%s: tensor %s: dimensions too large", p, t->name);
  if (t->offset % c->f->alignment)
    GORP_ERR(GORP_EINPUT, "%s: tensor %s: data offset %llu is not a multiple of the alignment %u",
             p, t->name, (unsigned long long)t->offset, c->f->alignment);
  return GORP_OK;
}

static int cmp_offset(const void *a, const void *b) {
  const gguf_tensor *x = *(const gguf_tensor *const *)a, *y = *(const gguf_tensor *const *)b;
  return (x->offset > y->offset) - (x->offset < y->offset);
}

/* Every tensor's bytes inside the data region, and no two tensors sharing bytes. */
static int check_extents(const gguf_file *f) {
  const uint64_t data_size = f->size - f->data_start;
  for (int i = 0; i < f->n_tensors; i++) {
    const gguf_tensor *t = &f->tensors[i];
    if (t->offset > data_size || t->nbytes > data_size - t->offset)
      GORP_ERR(GORP_EINPUT,
               "%s: tensor %s: %llu bytes at data offset %llu lie outside the data region of %llu "
               "bytes (truncated file?)",
               f->path, t->name, (unsigned long long)t->nbytes, (unsigned long long)t->offset,
               (unsigned long long)data_size);
  }
  const gguf_tensor **by;
  GORP_ALLOC(by, f->n_tensors, "the offset check of a GGUF file");
  int n = 0;
  for (int i = 0; i < f->n_tensors; i++)
    if (f->tensors[i].nbytes) by[n++] = &f->tensors[i];
  qsort(by, (size_t)n, sizeof(*by), cmp_offset);
  int bad = 0;
  for (int i = 1; i < n && !bad; i++)
    if (by[i]->offset < by[i - 1]->offset + by[i - 1]->nbytes) bad = i;
  const gguf_tensor *a = bad ? by[bad - 1] : NULL, *b = bad ? by[bad] : NULL;
  free(by);
  if (bad)
    GORP_ERR(GORP_EINPUT,
             "%s: tensors %s (data offset %llu, %llu bytes) and %s (offset %llu) overlap", f->path,
             a->name, (unsigned long long)a->offset, (unsigned long long)a->nbytes, b->name,
             (unsigned long long)b->offset);
  return GORP_OK;
}

/* ------------------------------------------------------------------------------------------ */

static int read_header(gguf_file *f, cursor *c) {
  c->what = "the header";
  char magic[4];
  GORP_CALL(cur_read(c, magic, 4));
  if (memcmp(magic, "GGUF", 4))
    GORP_ERR(GORP_EINPUT, "%s: not a GGUF file (the first 4 bytes are not \"GGUF\")", f->path);
  GORP_CALL(cur_u32(c, &f->version));
  if (f->version != 2 && f->version != 3)
    GORP_ERR(GORP_EINPUT,
             "%s: GGUF version %u is not supported (gorp reads versions 2 and 3, little-endian)",
             f->path, f->version);
  uint64_t n_tensors, n_kv;
  GORP_CALL(cur_u64(c, &n_tensors));
  GORP_CALL(cur_u64(c, &n_kv));
  if (n_tensors > GGUF_MAX_TENSORS)
    GORP_ERR(GORP_EINPUT, "%s: %llu tensors is over gorp's limit of %d", f->path,
             (unsigned long long)n_tensors, GGUF_MAX_TENSORS);
  if (n_kv > GGUF_MAX_KV)
    GORP_ERR(GORP_EINPUT, "%s: %llu metadata entries is over gorp's limit of %d", f->path,
             (unsigned long long)n_kv, GGUF_MAX_KV);
  /* before allocating for them: an entry takes at least 13 bytes (key length, type, a byte), a
   * tensor info 32 (name length, dims, one dim, type, offset) */
  const uint64_t left = f->size - c->pos;
  if (n_kv > left / 13 || n_tensors > (left - 13 * n_kv) / 32)
    GORP_ERR(GORP_EINPUT,
             "%s: %llu metadata entries and %llu tensor infos cannot fit in the %llu bytes left "
             "(truncated or not a GGUF file?)",
             f->path, (unsigned long long)n_kv, (unsigned long long)n_tensors,
             (unsigned long long)left);
  GORP_ALLOC(f->kv, n_kv, "the metadata of a GGUF file");
  for (int i = 0; i < (int)n_kv; i++) {
    f->n_kv = i + 1; /* counted first, so that gguf_close frees a half-read entry */
    GORP_CALL(read_kv(c, i, &f->kv[i]));
  }
  GORP_CALL(read_alignment(f));
  GORP_ALLOC(f->tensors, n_tensors, "the tensor infos of a GGUF file");
  f->n_tensors = (int)n_tensors;
  for (int i = 0; i < f->n_tensors; i++) GORP_CALL(read_tensor_info(c, i, &f->tensors[i]));
  /* the data region starts at the next multiple of the alignment */
  const uint64_t pad = (f->alignment - c->pos % f->alignment) % f->alignment;
  c->what = "the padding before the tensor data";
  GORP_CALL(need(c, pad));
  f->data_start = c->pos + pad;
  return check_extents(f);
}

static int open_and_parse(gguf_file *f, const char *path) {
  f->path = strdup(path);
  if (!f->path) GORP_ERR(GORP_EMEM, "out of memory opening %s", path);
  GORP_CALL(fs_open_regular(path, "GGUF file", &f->fd, &f->size));
  cursor *c;
  GORP_ALLOC(c, 1, "a GGUF reader");
  c->f = f;
  const int rc = read_header(f, c);
  free(c);
  return rc;
}

int gguf_open(gguf_file *f, const char *path) {
  memset(f, 0, sizeof(*f));
  f->fd = -1;
  const int rc = open_and_parse(f, path);
  if (rc) {
    gguf_close(f);
    gorp_trace(__FILE__, __LINE__, __func__, "open_and_parse(f, path)");
  }
  return rc;
}

void gguf_close(gguf_file *f) {
  if (f->fd >= 0) close(f->fd);
  for (int i = 0; f->kv && i < f->n_kv; i++) {
    free(f->kv[i].key);
    free(f->kv[i].str);
  }
  free(f->kv);
  free(f->tensors);
  free(f->path);
  memset(f, 0, sizeof(*f));
  f->fd = -1;
}

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key) {
  for (int i = 0; i < f->n_kv; i++)
    if (!strcmp(f->kv[i].key, key)) return &f->kv[i];
  return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
  for (int i = 0; i < f->n_tensors; i++)
    if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
  return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* dequantization: n blocks at src into out, the arithmetic of ggml's dequantize_row_* */

static float half(const unsigned char *b) {
  return safetensors_f16_to_f32((uint16_t)(b[0] | b[1] << 8));
}

static void dequantize(uint32_t type, const unsigned char *src, size_t n, float *out) {
  switch (type) {
  case T_F32:
    memcpy(out, src, 4 * n);
    break;
  case T_F16:
    for (size_t i = 0; i < n; i++) out[i] = half(src + 2 * i);
    break;
  case T_BF16:
    for (size_t i = 0; i < n; i++)
      out[i] = safetensors_bf16_to_f32((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
    break;
  case T_Q8_0:
    for (size_t i = 0; i < n; i++, src += 34, out += 32) {
      const float d = half(src);
      for (int j = 0; j < 32; j++) out[j] = (float)(int8_t)src[2 + j] * d;
    }
    break;
  case T_Q4_0:
    for (size_t i = 0; i < n; i++, src += 18, out += 32) {
      const float d = half(src);
      for (int j = 0; j < 16; j++) {
        out[j] = (float)((src[2 + j] & 0x0f) - 8) * d;
        out[j + 16] = (float)((src[2 + j] >> 4) - 8) * d;
      }
    }
    break;
  default: /* T_Q4_1 */
    for (size_t i = 0; i < n; i++, src += 20, out += 32) {
      const float d = half(src), m = half(src + 2);
      for (int j = 0; j < 16; j++) {
        out[j] = (float)(src[4 + j] & 0x0f) * d + m;
        out[j + 16] = (float)(src[4 + j] >> 4) * d + m;
      }
    }
    break;
  }
}

enum { READ_CHUNK = 1 << 20 };

/* Tensor t through buf (READ_CHUNK bytes), a whole number of blocks at a time. */
static int read_blocks(const gguf_file *f, const gguf_tensor *t, unsigned char *buf, float *out) {
  unsigned block = 1, bytes = 1;
  type_layout(t->type, &block, &bytes); /* always found: gguf_open refused every other type */
  const size_t per = READ_CHUNK / bytes, n_blocks = t->numel / block;
  for (size_t i = 0; i < n_blocks; i += per) {
    const size_t k = n_blocks - i < per ? n_blocks - i : per;
    GORP_CALL(read_exact(f, f->data_start + t->offset + i * bytes, buf, k * bytes));
    dequantize(t->type, buf, k, out + i * block);
  }
  return GORP_OK;
}

int gguf_read_f32(const gguf_file *f, const gguf_tensor *t, float *out) {
  /* through a buffer, so that a large tensor needs no second copy */
  unsigned char *buf;
  GORP_ALLOC(buf, READ_CHUNK, "a GGUF read buffer");
  const int rc = read_blocks(f, t, buf, out);
  free(buf);
  if (rc) gorp_trace(__FILE__, __LINE__, __func__, "read_blocks(f, t, buf, out)");
  return rc;
}
