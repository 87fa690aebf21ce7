/* safetensors writer (see safetensors.h): one F32 file from a list of float tensors, written to a
 * temporary name and published whole. Writes values as little-endian, like the reader assumes.
 * Not for: reading (safetensors.c) or deciding which tensors go into which shard (hf_export.c). */
#include "gorp/safetensors.h"

#include "gorp/err.h"
#include "gorp/fsutil.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

uint64_t safetensors_entry_bytes(const safetensors_entry *e) {
  uint64_t n = sizeof(float);
  for (int d = 0; d < e->ndim; d++) n *= (uint64_t)e->shape[d];
  return n;
}

/* The header JSON, its length padded with spaces to a multiple of 8 (the data region then starts
 * 8-byte aligned, as the reference writer does) into *text (cJSON_free) and *len. */
static int build_header(const char *path, const safetensors_entry *e, int n, char **text,
                        size_t *len) {
  cJSON *root = cJSON_CreateObject(), *meta = cJSON_CreateObject();
  int ok = root && meta && cJSON_AddItemToObject(root, "__metadata__", meta);
  if (!ok) cJSON_Delete(meta);
  ok = ok && cJSON_AddStringToObject(meta, "format", "pt");
  uint64_t at = 0;
  for (int i = 0; ok && i < n; i++) {
    cJSON *t = cJSON_CreateObject(), *shape = cJSON_CreateArray(), *off = cJSON_CreateArray();
    ok = t && shape && off && cJSON_AddItemToObject(root, e[i].name, t);
    if (!ok) cJSON_Delete(t);
    ok = ok && cJSON_AddStringToObject(t, "dtype", "F32") &&
         cJSON_AddItemToObject(t, "shape", shape);
    if (!ok) cJSON_Delete(shape);
    ok = ok && cJSON_AddItemToObject(t, "data_offsets", off);
    if (!ok) cJSON_Delete(off);
    for (int d = 0; ok && d < e[i].ndim; d++)
      ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)e[i].shape[d]));
    const uint64_t end = at + safetensors_entry_bytes(&e[i]);
    ok = ok && cJSON_AddItemToArray(off, cJSON_CreateNumber((double)at)) &&
         cJSON_AddItemToArray(off, cJSON_CreateNumber((double)end));
    at = end;
  }
  char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
  cJSON_Delete(root);
  if (!json) GORP_ERR(GORP_EMEM, "out of memory building the safetensors header of %s", path);
  const size_t raw = strlen(json), padded = (raw + 7) / 8 * 8;
  char *p = cJSON_malloc(padded + 1);
  if (!p) {
    cJSON_free(json);
    GORP_ERR(GORP_EMEM, "out of memory building the safetensors header of %s", path);
  }
  memcpy(p, json, raw);
  memset(p + raw, ' ', padded - raw);
  p[padded] = '\0';
  cJSON_free(json);
  *text = p;
  *len = padded;
  return GORP_OK;
}

/* What the file holds: the header's length, the header, the tensors' data. */
typedef struct st_file {
  const char *header;
  size_t len;
  const safetensors_entry *e;
  int n;
} st_file;

static int write_all(FILE *f, const void *ctx) {
  const st_file *x = ctx;
  unsigned char prefix[8];
  for (int i = 0; i < 8; i++) prefix[i] = (unsigned char)((uint64_t)x->len >> (8 * i));
  if (fwrite(prefix, 1, 8, f) != 8 || fwrite(x->header, 1, x->len, f) != x->len) return 0;
  for (int i = 0; i < x->n; i++) {
    const size_t numel = (size_t)(safetensors_entry_bytes(&x->e[i]) / sizeof(float));
    if (fwrite(x->e[i].data, sizeof(float), numel, f) != numel) return 0;
  }
  return 1;
}

int safetensors_write_f32(const char *path, const safetensors_entry *e, int n) {
  char *header = NULL;
  size_t len = 0;
  GORP_CALL(build_header(path, e, n, &header, &len));
  const st_file x = {header, len, e, n};
  const int rc = fs_write_with(path, write_all, &x);
  cJSON_free(header);
  if (rc) GORP_ERR(rc, "could not write safetensors file %s", path);
  return GORP_OK;
}
