/* safetensors_write_f32 against safetensors_open/read: a round trip of 1-D, 2-D and empty tensors
 * with exact values (NaN, inf, -0, subnormals), the header's 8-byte alignment and __metadata__,
 * and a failed write (a folder that does not exist) leaving neither the file nor its .tmp.
 * (Loading by the Python safetensors library and transformers: tests/ref/test_export.py.) */
#include "gorp/err.h"
#include "gorp/fsutil.h"
#include "gorp/safetensors.h"
#include "testutil.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void round_trip(const char *dir) {
  float a[6] = {1.5f, -0.0f, NAN, INFINITY, 1e-40f, -3.25f}, b[3] = {7.0f, 8.0f, 9.0f};
  const safetensors_entry e[3] = {{"model.layers.0.mlp.up_proj.weight", 2, {2, 3}, a},
                                  {"model.norm.weight", 1, {3}, b},
                                  {"empty", 2, {0, 4}, b}};
  char path[PATH_MAX];
  fmt_path(path, "%s/w.safetensors", dir);
  CHECK(safetensors_write_f32(path, e, 3) == GORP_OK, "write %s", path);
  safetensors_file f;
  CHECK(safetensors_open(&f, path) == GORP_OK, "the reader opens what the writer wrote");
  CHECK(f.n_tensors == 3 && f.data_start % 8 == 0 && f.data_size == 36,
        "3 tensors, data at an 8-byte boundary, 36 bytes: %d, %llu, %llu", f.n_tensors,
        (unsigned long long)f.data_start, (unsigned long long)f.data_size);
  for (int i = 0; i < 3 && f.n_tensors == 3; i++) {
    const safetensors_tensor *t = safetensors_find(&f, e[i].name);
    int same = t && !strcmp(t->dtype, "F32") && t->ndim == e[i].ndim;
    for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == e[i].shape[d];
    float got[6] = {0};
    if (same && t->numel) same = safetensors_read_f32(&f, t, got) == GORP_OK;
    if (same && t->numel) same = !memcmp(got, e[i].data, t->numel * sizeof(float));
    CHECK(same, "tensor %s reads back with its shape and exact bits", e[i].name);
  }
  safetensors_close(&f);
  char *text;
  size_t len;
  CHECK(fs_read_regular(path, "safetensors", 1 << 20, &text, &len) == GORP_OK, "read raw");
  CHECK(strstr(text + 8, "\"__metadata__\":{\"format\":\"pt\"}") != NULL,
        "the header carries {\"format\": \"pt\"} (transformers requires it)");
  free(text);
}

static void failed_write(const char *dir) {
  char path[PATH_MAX], tmp[PATH_MAX];
  fmt_path(path, "%s/missing/w.safetensors", dir);
  fmt_path(tmp, "%s.tmp", path);
  const float x = 1.0f;
  const safetensors_entry e = {"x", 1, {1}, &x};
  capture_begin();
  const int rc = safetensors_write_f32(path, &e, 1);
  char *err = capture_end();
  CHECK(rc == GORP_EIO && strstr(err, path), "a write into a missing folder fails naming %s: %s",
        path, err);
  CHECK(access(path, F_OK) && access(tmp, F_OK), "and leaves neither the file nor its .tmp");
  free(err);
}

int main(void) {
  char dir[] = "/tmp/gorp_st_write_XXXXXX";
  if (!mkdtemp(dir)) return 2;
  round_trip(dir);
  failed_write(dir);
  rm_tree(dir);
  return tests_finish();
}
