/* safetensors reader (see safetensors.h): header parsing and validation, on-demand tensor reads
 * with exact F16/BF16 -> float32 conversion. Reads values as little-endian, like crc.c assumes. */
#include "gorp/safetensors.h"

#include "gorp/err.h"
#include "gorp/fsutil.h"
#include "gorp/jsonutil.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The reference implementation refuses larger headers; so do we, before allocating them. */
#define SAFETENSORS_HEADER_MAX 100000000ull

/* Every fixed-size dtype of the format, so that offsets of any tensor can be validated. */
static const struct {
  const char *name;
  size_t size;
} dtypes[] = {{"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
              {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
              {"U32", 4},  {"F32", 4}, {"I64", 8}, {"U64", 8},     {"F64", 8}};

float safetensors_f16_to_f32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | man << 13; /* inf, or NaN keeping its payload */
  } else if (exp) {
    bits = sign | (exp + 127 - 15) << 23 | man << 13;
  } else {
    /* zero or subnormal: man * 2^-24 is exact in float32 (a normal number there) */
    const float v = (float)man * 0x1p-24f;
    return sign ? -v : v;
  }
  float f;
  memcpy(&f, &bits, sizeof(f));
  return f;
}

float safetensors_bf16_to_f32(uint16_t h) {
  /* bfloat16 is the top half of a float32 */
  const uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, sizeof(f));
  return f;
}

static int read_exact(const safetensors_file *f, uint64_t offset, void *buf, size_t n) {
  return fs_pread_exact(f->fd, offset, buf, n, f->path);
}

/* A JSON number that is a non-negative integer (cJSON keeps numbers as doubles). */
static int json_u64(const cJSON *j, uint64_t *v) {
  if (!cJSON_IsNumber(j)) return 0;
  const double d = j->valuedouble;
  if (!(d >= 0 && d < 0x1p63 && d == floor(d))) return 0;
  *v = (uint64_t)d;
  return 1;
}

static int parse_tensor(safetensors_file *f, const cJSON *e, safetensors_tensor *t) {
  const char *p = f->path, *name = e->string;
  if (!cJSON_IsObject(e))
    GORP_ERR(GORP_EINPUT, "%s: header entry of tensor '%s' is not a JSON object", p, name);
  const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(e, "dtype");
  const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
  const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
  if (!cJSON_IsString(dtype)) GORP_ERR(GORP_EINPUT, "%s: tensor '%s' has no dtype string", p, name);
  size_t elsize = 0;
  for (size_t i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++) {
    if (!strcmp(dtype->valuestring, dtypes[i].name)) {
      t->dtype = dtypes[i].name;
      elsize = dtypes[i].size;
    }
  }
  if (!elsize)
    GORP_ERR(GORP_EINPUT, "%s: tensor '%s' has unknown dtype '%s'", p, name, dtype->valuestring);
  if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) > SAFETENSORS_MAX_DIM)
    GORP_ERR(GORP_EINPUT, "%s: tensor '%s': shape must be a list of at most %d integers", p, name,
             SAFETENSORS_MAX_DIM);
  t->numel = 1;
  const cJSON *d;
  cJSON_ArrayForEach(d, shape) {
    uint64_t v;
    if (!json_u64(d, &v))
      GORP_ERR(GORP_EINPUT, "%s: tensor '%s': shape entries must be non-negative integers", p,
               name);
    if (__builtin_mul_overflow(t->numel, v, &t->numel))
      GORP_ERR(GORP_EINPUT, "%s: tensor '%s': shape is too large", p, name);
    t->shape[t->ndim++] = (int64_t)v;
  }
  if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
      !json_u64(cJSON_GetArrayItem(offsets, 0), &t->begin) ||
      !json_u64(cJSON_GetArrayItem(offsets, 1), &t->end))
    GORP_ERR(GORP_EINPUT, "%s: tensor '%s': data_offsets must be [begin, end], two integers", p,
             name);
  if (t->begin > t->end || t->end > f->data_size)
    GORP_ERR(GORP_EINPUT,
             "%s: tensor '%s': data_offsets [%llu, %llu] lie outside the data region of %llu "
             "bytes",
             p, name, (unsigned long long)t->begin, (unsigned long long)t->end,
             (unsigned long long)f->data_size);
  size_t bytes;
  if (__builtin_mul_overflow(t->numel, elsize, &bytes) || t->end - t->begin != bytes)
    GORP_ERR(GORP_EINPUT,
             "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes, but %zu elements of "
             "%s need %zu",
             p, name, (unsigned long long)t->begin, (unsigned long long)t->end,
             (unsigned long long)(t->end - t->begin), t->numel, t->dtype, t->numel * elsize);
  t->name = strdup(name);
  if (!t->name) GORP_ERR(GORP_EMEM, "out of memory for the tensor names of %s", p);
  return GORP_OK;
}

static int cmp_begin(const void *a, const void *b) {
  const safetensors_tensor *x = *(const safetensors_tensor *const *)a,
                           *y = *(const safetensors_tensor *const *)b;
  return (x->begin > y->begin) - (x->begin < y->begin);
}

/* Two tensors whose bytes overlap would alias each other's data (the safetensors library refuses
 * such files); sorted by offset, each non-empty tensor must start at or after the end of the
 * previous one. */
static int check_overlaps(const safetensors_file *f) {
  const safetensors_tensor **by;
  GORP_ALLOC(by, f->n_tensors, "the offset check of a safetensors file");
  int n = 0;
  for (int i = 0; i < f->n_tensors; i++)
    if (f->tensors[i].end > f->tensors[i].begin) by[n++] = &f->tensors[i];
  qsort(by, (size_t)n, sizeof(*by), cmp_begin);
  int bad = -1;
  for (int i = 1; i < n && bad < 0; i++)
    if (by[i]->begin < by[i - 1]->end) bad = i;
  if (bad < 0) {
    free(by);
    return GORP_OK;
  }
  const safetensors_tensor *a = by[bad - 1], *b = by[bad];
  free(by);
  GORP_ERR(GORP_EINPUT,
           "%s: tensors '%s' (data_offsets [%llu, %llu]) and '%s' ([%llu, %llu]) overlap; each "
           "tensor needs bytes of its own",
           f->path, a->name, (unsigned long long)a->begin, (unsigned long long)a->end, b->name,
           (unsigned long long)b->begin, (unsigned long long)b->end);
}

static int parse_entries(safetensors_file *f, const cJSON *root) {
  if (!cJSON_IsObject(root)) GORP_ERR(GORP_EINPUT, "%s: header is not a JSON object", f->path);
  const cJSON *e;
  int n = 0;
  cJSON_ArrayForEach(e, root) n += strcmp(e->string, "__metadata__") != 0;
  GORP_ALLOC(f->tensors, n, "the tensor table of a safetensors file");
  cJSON_ArrayForEach(e, root) {
    if (!strcmp(e->string, "__metadata__")) continue;
    /* counted first, so that safetensors_close frees the name of a half-parsed entry */
    GORP_CALL(parse_tensor(f, e, &f->tensors[f->n_tensors++]));
  }
  return check_overlaps(f);
}

static int parse_header(safetensors_file *f, const char *text, size_t n) {
  const char *end = NULL;
  /* n + 1 includes the terminating NUL: trailing padding spaces are allowed, garbage is not */
  cJSON *root = cJSON_ParseWithLengthOpts(text, n + 1, &end, 1);
  if (!root)
    GORP_ERR(GORP_EINPUT, "%s: header is not valid JSON (error near byte %lld of %zu)", f->path,
             (long long)(end - text), n);
  int rc = json_check_unique_keys(f->path, root);
  if (!rc) rc = parse_entries(f, root);
  cJSON_Delete(root);
  return rc;
}

static int open_and_parse(safetensors_file *f, const char *path) {
  f->path = strdup(path);
  if (!f->path) GORP_ERR(GORP_EMEM, "out of memory opening %s", path);
  uint64_t size;
  GORP_CALL(fs_open_regular(path, "safetensors file", &f->fd, &size));
  if (size < 8)
    GORP_ERR(GORP_EINPUT, "%s: %llu bytes is too short for a safetensors file", path,
             (unsigned long long)size);
  unsigned char len[8];
  GORP_CALL(read_exact(f, 0, len, sizeof(len)));
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = n << 8 | len[i];
  if (n > size - 8)
    GORP_ERR(GORP_EINPUT,
             "%s: header length %llu is larger than the %llu bytes that follow it (not a "
             "safetensors file, or truncated)",
             path, (unsigned long long)n, (unsigned long long)(size - 8));
  if (n > SAFETENSORS_HEADER_MAX)
    GORP_ERR(GORP_EINPUT, "%s: header length %llu is over the format's limit of %llu bytes", path,
             (unsigned long long)n, SAFETENSORS_HEADER_MAX);
  f->data_start = 8 + n;
  f->data_size = size - 8 - n;
  char *text;
  GORP_ALLOC(text, n + 1, "a safetensors header");
  int rc = read_exact(f, 8, text, n);
  if (!rc) rc = parse_header(f, text, n);
  free(text);
  return rc;
}

int safetensors_open(safetensors_file *f, const char *path) {
  memset(f, 0, sizeof(*f));
  f->fd = -1;
  const int rc = open_and_parse(f, path);
  if (rc) {
    safetensors_close(f);
    gorp_trace(__FILE__, __LINE__, __func__, "open_and_parse(f, path)");
  }
  return rc;
}

void safetensors_close(safetensors_file *f) {
  if (f->fd >= 0) close(f->fd);
  for (int i = 0; f->tensors && i < f->n_tensors; i++) free(f->tensors[i].name);
  free(f->tensors);
  free(f->path);
  memset(f, 0, sizeof(*f));
  f->fd = -1;
}

const safetensors_tensor *safetensors_find(const safetensors_file *f, const char *name) {
  for (int i = 0; i < f->n_tensors; i++)
    if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
  return NULL;
}

int safetensors_read_bf16(const safetensors_file *f, const safetensors_tensor *t, uint16_t *out) {
  if (strcmp(t->dtype, "BF16"))
    GORP_ERR(GORP_EINPUT, "%s: tensor '%s' has dtype %s, not BF16", f->path, t->name, t->dtype);
  return read_exact(f, f->data_start + t->begin, out, t->numel * sizeof(uint16_t));
}

int safetensors_read_f32(const safetensors_file *f, const safetensors_tensor *t, float *out) {
  const uint64_t offset = f->data_start + t->begin;
  if (!strcmp(t->dtype, "F32")) return read_exact(f, offset, out, t->numel * sizeof(float));
  const int f16 = !strcmp(t->dtype, "F16");
  if (!f16 && strcmp(t->dtype, "BF16"))
    GORP_ERR(GORP_EINPUT, "%s: tensor '%s' has dtype %s; only F32, F16 and BF16 can be read",
             f->path, t->name, t->dtype);
  /* converted through a small buffer so that a large tensor needs no second copy */
  enum { CHUNK = 16384 };
  uint16_t buf[CHUNK];
  for (size_t i = 0; i < t->numel; i += CHUNK) {
    const size_t k = t->numel - i < CHUNK ? t->numel - i : CHUNK;
    GORP_CALL(read_exact(f, offset + 2 * i, buf, 2 * k));
    for (size_t j = 0; j < k; j++)
      out[i + j] = f16 ? safetensors_f16_to_f32(buf[j]) : safetensors_bf16_to_f32(buf[j]);
  }
  return GORP_OK;
}
