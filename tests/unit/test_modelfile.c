/* Unit tests of the model file and the safetensors reader: bit-exact save/load round trips (tied
 * and untied), refusal of damaged files (flipped byte, wrong shape, missing or unknown dataset,
 * other format version) with the dataset named, a /model group inside a larger checkpoint, atomic
 * save leaving an existing file alone, exact F16/BF16 conversion, and safetensors header checks;
 * the crc32 of a tensor combined from the parts of its runs (as ranks holding shards compute it)
 * equals zlib's crc32 of the whole, and the block datasets of h5io (matrices concatenated in a
 * 1-D dataset, read from gaps in memory) on one process.
 * Not for: import-hf end to end (tests/cli/import_errors.sh), the collective path (MPI:
 * tests/unit/test_h5io_collective.c under tests/cli/h5io_collective.sh). No MPI. */
#include "testutil.h"
#include "gorp/crc.h"
#include "gorp/err.h"
#include "gorp/h5io.h"
#include "gorp/hf_import.h"
#include "gorp/model.h"
#include "gorp/modelfile.h"
#include "gorp/safetensors.h"

#include <fcntl.h>
#include <ftw.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_dir[PATH_MAX]; /* mkdtemp folder for model files and captured stderr */

/* ---- helpers ----------------------------------------------------------------------------------
 */

static model_config tiny_config(int tie) {
  return (model_config){.vocab_size = 11,
                        .hidden_size = 8,
                        .intermediate_size = 12,
                        .num_layers = 2,
                        .num_heads = 2,
                        .num_kv_heads = 1,
                        .head_dim = 4,
                        .max_seq = 16,
                        .rms_eps = 1e-5f,
                        .rope_theta = 10000.0f,
                        .tie_embeddings = tie};
}

/* A random tiny model whose norms are random too, with special values that a lossy path would
 * change: -0, a subnormal, +-inf and a NaN with a payload. */
static void make_model(model *m, int tie) {
  const model_config cfg = tiny_config(tie);
  if (model_create(m, &cfg)) exit(2);
  model_init_random(m, 42, 0.02f, 0.02f);
  for (size_t i = 0; i < m->n_params; i += 7) m->params[i] *= -3.0f;
  const uint32_t special[] = {0x80000000u, 0x00000123u, 0x7f800000u, 0xff800000u, 0x7fc01234u};
  for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
    memcpy(&m->params[13 + 29 * i], &special[i], sizeof(float));
}

static int same_config(const model_config *a, const model_config *b) {
  return a->vocab_size == b->vocab_size && a->hidden_size == b->hidden_size &&
         a->intermediate_size == b->intermediate_size && a->num_layers == b->num_layers &&
         a->num_heads == b->num_heads && a->num_kv_heads == b->num_kv_heads &&
         a->head_dim == b->head_dim && a->max_seq == b->max_seq && a->rms_eps == b->rms_eps &&
         a->rope_theta == b->rope_theta && a->tie_embeddings == b->tie_embeddings;
}

/* Saves a fresh random model (tied or not) to tmp_dir/name; returns it in m. */
static void save_fresh(model *m, int tie, const char *name, char path[PATH_MAX]) {
  make_model(m, tie);
  fmt_path(path, "%s/%s", tmp_dir, name);
  if (modelfile_save(m, path, NULL)) exit(2);
}

/* modelfile_load must fail with GORP_EINPUT, print every needle and leave m zeroed. */
static void expect_load_error(const char *path, const char *what, const char *needle1,
                              const char *needle2) {
  model m;
  capture_begin();
  const int rc = modelfile_load(&m, path);
  char *msg = capture_end();
  CHECK(rc == GORP_EINPUT, "%s: load returned %d", what, rc);
  CHECK(strstr(msg, path) && strstr(msg, needle1) && (!needle2 || strstr(msg, needle2)),
        "%s: message lacks '%s' / '%s':\n%s", what, needle1, needle2 ? needle2 : "", msg);
  CHECK(m.params == NULL && m.tensors == NULL, "%s: failed load leaves the model freed", what);
  if (rc == GORP_OK) model_free(&m);
  free(msg);
}

static hid_t open_rw(const char *path) {
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  if (f < 0) exit(2);
  return f;
}

static void write_float_dataset(hid_t loc, const char *name, int ndim, const hsize_t *dims) {
  hid_t space = H5Screate_simple(ndim, dims, NULL);
  hid_t d = H5Dcreate2(loc, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t n = 1;
  for (int i = 0; i < ndim; i++) n *= dims[i];
  float *zeros = calloc(n, sizeof(float));
  const uint32_t crc = crc32_floats(zeros, n);
  hid_t scalar = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(d, "crc32", H5T_STD_U32LE, scalar, H5P_DEFAULT, H5P_DEFAULT);
  if (d < 0 || a < 0 || H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros) < 0 ||
      H5Awrite(a, H5T_NATIVE_UINT32, &crc) < 0)
    exit(2);
  free(zeros);
  H5Aclose(a);
  H5Sclose(scalar);
  H5Dclose(d);
  H5Sclose(space);
}

static void write_int_attr(hid_t loc, const char *name, int v) {
  if (H5Aexists(loc, name) > 0) H5Adelete(loc, name);
  hid_t scalar = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(loc, name, H5T_STD_I32LE, scalar, H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0 || H5Awrite(a, H5T_NATIVE_INT, &v) < 0) exit(2);
  H5Aclose(a);
  H5Sclose(scalar);
}

/* Writes a safetensors file: the 8-byte little-endian length, header, then data. */
static void write_st(const char *path, const char *header, const void *data, size_t n) {
  const uint64_t len = strlen(header);
  unsigned char len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(len >> (8 * i));
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(len8, 1, 8, f) != 8 || fwrite(header, 1, len, f) != len ||
      (n && fwrite(data, 1, n, f) != n) || fclose(f))
    exit(2);
}

static int same_bits(float a, float b) {
  return !memcmp(&a, &b, sizeof(float));
}

static float from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof(f));
  return f;
}

/* ---- conversions ------------------------------------------------------------------------------
 */

static void test_f16_known_bit_patterns_convert_exactly(void) {
  const struct {
    uint16_t h;
    uint32_t f;
  } cases[] = {
      {0x3c00, 0x3f800000}, /* 1 */
      {0xc000, 0xc0000000}, /* -2 */
      {0x7bff, 0x477fe000}, /* 65504, the largest half */
      {0x0400, 0x38800000}, /* 2^-14, the smallest normal */
      {0x0001, 0x33800000}, /* 2^-24, the smallest subnormal */
      {0x03ff, 0x387fc000}, /* 1023 * 2^-24, the largest subnormal */
      {0x8001, 0xb3800000}, /* -2^-24 */
      {0x0000, 0x00000000}, /* +0 */
      {0x8000, 0x80000000}, /* -0 */
      {0x7c00, 0x7f800000}, /* inf */
      {0xfc00, 0xff800000}, /* -inf */
      {0x7e00, 0x7fc00000}, /* quiet NaN */
      {0x7c01, 0x7f802000}, /* signalling NaN keeps its payload (still a NaN) */
      {0x3555, 0x3eaaa000}, /* 0.333251953125 */
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const float got = safetensors_f16_to_f32(cases[i].h);
    CHECK(same_bits(got, from_bits(cases[i].f)), "f16 0x%04x -> %a, want %a", cases[i].h, got,
          from_bits(cases[i].f));
  }
}

static void test_every_f16_matches_ldexp_reference(void) {
  int bad = 0;
  for (uint32_t h = 0; h <= 0xffff; h++) {
    const int e = (h >> 10) & 31, m = h & 1023;
    const double mag = e == 31 ? (m ? NAN : INFINITY) : e ? ldexp(1024 + m, e - 25) : ldexp(m, -24);
    const float want = (float)(h & 0x8000 ? -mag : mag);
    const float got = safetensors_f16_to_f32((uint16_t)h);
    if (isnan(want) ? !(isnan(got) && !signbit(got) == !signbit(want)) : !same_bits(got, want))
      bad++;
  }
  CHECK(bad == 0, "%d of 65536 half values convert wrongly", bad);
}

static void test_every_bf16_matches_ldexp_reference(void) {
  int bad = 0;
  for (uint32_t h = 0; h <= 0xffff; h++) {
    const int e = (h >> 7) & 255, m = h & 127;
    const double mag = e == 255 ? (m ? NAN : INFINITY)
                       : e      ? ldexp(128 + m, e - 134)
                                : ldexp(m, -133);
    const float want = (float)(h & 0x8000 ? -mag : mag);
    const float got = safetensors_bf16_to_f32((uint16_t)h);
    if (isnan(want) ? !(isnan(got) && !signbit(got) == !signbit(want)) : !same_bits(got, want))
      bad++;
  }
  CHECK(bad == 0, "%d of 65536 bfloat16 values convert wrongly", bad);
  CHECK(same_bits(safetensors_bf16_to_f32(0x0001), from_bits(0x00010000)), "bf16 subnormal");
  CHECK(same_bits(safetensors_bf16_to_f32(0x8000), -0.0f), "bf16 -0");
  CHECK(safetensors_bf16_to_f32(0x7f7f) == 0x1.fep127f, "bf16 max");
}

static void test_crc32_is_zlib_crc_of_little_endian_bytes(void) {
  const float x[] = {1.0f, -2.0f, 0.5f, 3.25f};
  /* python3 -c "import zlib,struct; print(hex(zlib.crc32(struct.pack('<4f',1,-2,.5,3.25))))" */
  CHECK(crc32_floats(x, 4) == 0x1810ac76u, "crc32 0x%08x", crc32_floats(x, 4));
  CHECK(crc32_floats(x, 0) == 0, "crc32 of nothing");
}

/* The parts of runs [cut[i], cut[i+1]) of x (n bytes), XOR'd in the order given by perm. */
static uint32_t parts_of_runs(const unsigned char *x, size_t n, const size_t *cut, int runs,
                              const int *perm) {
  uint32_t parts = 0;
  for (int k = 0; k < runs; k++) {
    const int i = perm[k];
    parts ^= crc32_part(x + cut[i], cut[i + 1] - cut[i], cut[i], n);
  }
  return parts;
}

static void test_crc32_parts_combine_to_crc32_of_the_whole(void) {
  enum { N = 4096 };
  static unsigned char x[N];
  uint64_t state = 12345;
  for (size_t i = 0; i < N; i++)
    x[i] = (unsigned char)((state = state * 6364136223846793005ULL + 1) >> 56);
  int bad = 0;
  for (int trial = 0; trial < 300; trial++) { /* random lengths, random cuts, XOR in any order */
    const size_t n = (size_t)(state = state * 6364136223846793005ULL + 1) % N;
    size_t cut[33] = {0};
    int perm[32], runs = 1 + (int)((state >> 40) % 32);
    for (int i = 1; i < runs; i++)
      cut[i] = (size_t)((state = state * 6364136223846793005ULL + 1) >> 33) % (n + 1);
    cut[runs] = n;
    for (int i = 1; i < runs; i++) /* sorted cuts; empty runs allowed */
      for (int j = i + 1; j < runs; j++)
        if (cut[j] < cut[i]) {
          const size_t t = cut[i];
          cut[i] = cut[j];
          cut[j] = t;
        }
    for (int i = 0; i < runs; i++) perm[i] = runs - 1 - i;
    bad += crc32_from_parts(parts_of_runs(x, n, cut, runs, perm), n) != crc32_bytes(x, n);
  }
  CHECK(bad == 0, "%d of 300 random tilings give another crc32 than the whole", bad);
  /* a (48, 32) float tensor split on its columns over 3 ranks: one run per row and rank */
  float t[48 * 32];
  for (int i = 0; i < 48 * 32; i++) t[i] = (float)i * 0.25f - 7.0f;
  uint32_t parts = 0;
  for (int rank = 0; rank < 3; rank++)
    for (int row = 0; row < 48; row++) {
      const size_t first = (size_t)row * 32 + (size_t)rank * 32 / 3,
                   last = (size_t)row * 32 + (size_t)(rank + 1) * 32 / 3;
      parts ^=
          crc32_part(t + first, (last - first) * sizeof(float), first * sizeof(float), sizeof(t));
    }
  CHECK(crc32_from_parts(parts, sizeof(t)) == crc32_floats(t, 48 * 32),
        "column shards of 3 ranks combine to the tensor's crc32");
  CHECK(crc32_from_parts(0, 0) == 0, "nothing combines to the crc32 of nothing");
  /* the parts must tile the bytes once: a run counted twice cancels out */
  const size_t cut[3] = {0, 100, 200}, twice[3] = {0, 100, 100};
  const int order[3] = {0, 1, 2};
  CHECK(crc32_from_parts(parts_of_runs(x, 200, cut, 2, order) ^ crc32_part(x + 100, 100, 100, 200),
                         200) != crc32_bytes(x, 200) &&
            crc32_from_parts(parts_of_runs(x, 200, twice, 2, order), 200) != crc32_bytes(x, 200),
        "a run counted twice or never gives another checksum");
}

/* ---- h5io block datasets on one process -------------------------------------------------------
 */

/* Two matrices (2, 3) and (4, 1) concatenated in a 1-D dataset of 10 from a buffer with a gap. */
static void test_block_dataset_concatenates_matrices_from_memory_with_gaps(void) {
  char path[PATH_MAX];
  fmt_path(path, "%s/blocks.h5", tmp_dir);
  const float x[12] = {1, 2, 3, 4, 5, 6, -1, -1, 7, 8, 9, 10};
  const h5io_block b[2] = {{.rows = 2, .cols = 3, .nr = 2, .nc = 3},
                           {.base = 6, .rows = 4, .cols = 1, .nr = 4, .nc = 1, .mem = 8}};
  const hsize_t dims = 10;
  const h5io_data s = {"g/v", H5T_NATIVE_FLOAT, 1, &dims, b, 2};
  hid_t f;
  if (h5io_create(path, &f)) exit(2);
  CHECK(h5io_write_part(f, &s, x, NULL, path) == GORP_OK, "write the blocks");
  H5Fclose(f);
  const float logical[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  float flat[10] = {0}, back[12] = {0};
  if (h5io_open_read(path, "test file", &f)) exit(2);
  CHECK(h5io_read_floats(f, "g/v", 1, &dims, flat, path) == GORP_OK &&
            !memcmp(flat, logical, sizeof(logical)),
        "the dataset is the logical concatenation, its crc32 that of the whole");
  CHECK(h5io_read_part(f, &s, back, NULL, path) == GORP_OK && !memcmp(back, x, 6 * sizeof(float)) &&
            back[6] == 0 && back[7] == 0 && !memcmp(back + 8, x + 8, 4 * sizeof(float)),
        "the blocks read back to their places, the gap untouched");
  /* a shard needs the ranks that hold the rest: refused on one process, naming the dataset */
  const h5io_block half = {.rows = 2, .cols = 3, .nr = 1, .nc = 3, .split = 1};
  const hsize_t d2[2] = {2, 3};
  const h5io_data s2 = {"g/v2", H5T_NATIVE_FLOAT, 2, d2, &half, 1};
  capture_begin();
  const int rc = h5io_read_part(f, &s2, back, NULL, path);
  char *msg = capture_end();
  CHECK(rc == GORP_ELIB && strstr(msg, "/g/v2") && strstr(msg, "does not fit"),
        "a shard read by one process is refused:\n%s", msg);
  free(msg);
  H5Fclose(f);
}

/* ---- safetensors ------------------------------------------------------------------------------
 */

static void test_safetensors_reads_f32_f16_bf16(void) {
  char path[PATH_MAX];
  fmt_path(path, "%s/ok.safetensors", tmp_dir);
  unsigned char data[18];
  const float a[2] = {1.5f, -0.0f};
  const uint16_t h[3] = {0x3c00, 0x0001, 0xfc00}, b[2] = {0x3f80, 0x7fc0};
  memcpy(data, a, 8);
  memcpy(data + 8, h, 6);
  memcpy(data + 14, b, 4);
  /* trailing spaces pad headers to alignment in real files */
  write_st(path,
           "{\"__metadata__\":{\"format\":\"pt\"},"
           "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
           "\"h\":{\"dtype\":\"F16\",\"shape\":[1,3],\"data_offsets\":[8,14]},"
           "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[14,18]}}   ",
           data, sizeof(data));
  safetensors_file f;
  CHECK(safetensors_open(&f, path) == GORP_OK, "open");
  CHECK(f.n_tensors == 3, "n_tensors %d", f.n_tensors);
  const safetensors_tensor *th = safetensors_find(&f, "h");
  CHECK(th && th->ndim == 2 && th->shape[0] == 1 && th->shape[1] == 3 && th->numel == 3,
        "shape of h");
  CHECK(!safetensors_find(&f, "__metadata__") && !safetensors_find(&f, "c"), "find");
  float out[3];
  CHECK(safetensors_read_f32(&f, safetensors_find(&f, "a"), out) == GORP_OK, "read a");
  CHECK(same_bits(out[0], 1.5f) && same_bits(out[1], -0.0f), "a = %g %g", out[0], out[1]);
  CHECK(safetensors_read_f32(&f, th, out) == GORP_OK, "read h");
  CHECK(out[0] == 1.0f && out[1] == 0x1p-24f && out[2] == -INFINITY, "h = %a %a %a", out[0], out[1],
        out[2]);
  CHECK(safetensors_read_f32(&f, safetensors_find(&f, "b"), out) == GORP_OK, "read b");
  CHECK(out[0] == 1.0f && isnan(out[1]), "b = %g %g", out[0], out[1]);
  safetensors_close(&f);
}

/* Each broken file must be refused with GORP_EINPUT naming the file (and the tensor). */
static void test_safetensors_refuses_broken_headers(void) {
  static const struct {
    const char *what, *header, *needle;
    size_t data;
  } cases[] = {
      {"header length past the end", NULL, "header length", 0},
      {"not JSON", "{\"a\": nope}", "not valid JSON", 0},
      {"garbage after the JSON", "{}xx", "not valid JSON", 0},
      {"JSON but not an object", "[1, 2]", "not a JSON object", 0},
      {"offsets outside data", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
       "'w': data_offsets [0, 16] lie outside the data region of 8 bytes", 8},
      {"offsets not matching shape",
       "{\"w\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,8]}}",
       "'w': data_offsets [0, 8] hold 8 bytes, but 3 elements of F16 need 6", 8},
      {"unknown dtype", "{\"w\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,1]}}",
       "tensor 'w' has unknown dtype 'Q7'", 8},
      {"negative shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}",
       "'w': shape entries must be non-negative integers", 8},
      {"no offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", "'w': data_offsets must be", 8},
  };
  char path[PATH_MAX];
  const unsigned char zeros[8] = {0};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    fmt_path(path, "%s/bad%zu.safetensors", tmp_dir, i);
    if (cases[i].header) {
      write_st(path, cases[i].header, zeros, cases[i].data);
    } else {
      const unsigned char len8[10] = {0x40, 0x42, 0x0f, 0, 0, 0, 0, 0, '{', '}'}; /* 10^6 */
      FILE *f = fopen(path, "wb");
      if (!f || fwrite(len8, 1, sizeof(len8), f) != sizeof(len8) || fclose(f)) exit(2);
    }
    safetensors_file st;
    capture_begin();
    const int rc = safetensors_open(&st, path);
    char *msg = capture_end();
    CHECK(rc == GORP_EINPUT, "%s: open returned %d", cases[i].what, rc);
    CHECK(strstr(msg, path) && strstr(msg, cases[i].needle), "%s: message lacks '%s':\n%s",
          cases[i].what, cases[i].needle, msg);
    CHECK(st.tensors == NULL && st.fd == -1, "%s: failed open leaves nothing open", cases[i].what);
    free(msg);
  }
}

static void test_safetensors_refuses_to_read_integer_dtype(void) {
  char path[PATH_MAX];
  fmt_path(path, "%s/i64.safetensors", tmp_dir);
  const int64_t v[2] = {1, 2};
  write_st(path, "{\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", v,
           sizeof(v));
  safetensors_file f;
  CHECK(safetensors_open(&f, path) == GORP_OK, "an I64 tensor is valid in the header");
  float out[2];
  capture_begin();
  const int rc = safetensors_read_f32(&f, &f.tensors[0], out);
  char *msg = capture_end();
  CHECK(rc == GORP_EINPUT && strstr(msg, path) && strstr(msg, "'ids' has dtype I64"),
        "read of I64: rc %d, message:\n%s", rc, msg);
  free(msg);
  safetensors_close(&f);
}

/* ---- model file -------------------------------------------------------------------------------
 */

static void check_round_trip(int tie) {
  model m, back;
  char path[PATH_MAX];
  save_fresh(&m, tie, tie ? "tied.h5" : "untied.h5", path);
  char tmp[PATH_MAX];
  fmt_path(tmp, "%s.tmp", path);
  CHECK(access(tmp, F_OK) != 0, "tie=%d: no %s left after a save", tie, tmp);
  model_config cfg;
  CHECK(modelfile_read_config(path, &cfg) == GORP_OK && same_config(&cfg, &m.cfg),
        "tie=%d: read_config", tie);
  CHECK(modelfile_load(&back, path) == GORP_OK, "tie=%d: load", tie);
  CHECK(same_config(&back.cfg, &m.cfg), "tie=%d: config round trip", tie);
  CHECK(back.n_tensors == m.n_tensors && back.n_params == m.n_params &&
            !memcmp(back.params, m.params, m.n_params * sizeof(float)),
        "tie=%d: parameters are bit-exact", tie);
  CHECK(back.w.head == (tie ? back.w.embed : back.params + back.tensors[back.n_tensors - 1].offset),
        "tie=%d: head view", tie);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  CHECK(f >= 0 && (H5Lexists(f, "/model/lm_head.weight", H5P_DEFAULT) > 0) == !tie,
        "tie=%d: lm_head.weight stored only when untied", tie);
  /* the generated hf_config is a config.json that reads back to the same architecture */
  hid_t g = H5Gopen2(f, "model", H5P_DEFAULT);
  char *json = NULL;
  CHECK(g >= 0 && h5io_read_str_attr(g, "/model", "hf_config", &json, path) == GORP_OK,
        "tie=%d: read hf_config", tie);
  model_config parsed;
  CHECK(json && hf_config_parse(json, "hf_config", &parsed) == GORP_OK &&
            same_config(&parsed, &m.cfg),
        "tie=%d: generated hf_config round trip:\n%s", tie, json ? json : "");
  free(json);
  H5Gclose(g);
  H5Fclose(f);
  model_free(&back);
  model_free(&m);
}

static void test_save_load_round_trip_is_bit_exact_untied_and_tied(void) {
  check_round_trip(0);
  check_round_trip(1);
}

static void test_load_names_dataset_with_flipped_byte(void) {
  model m;
  char path[PATH_MAX];
  save_fresh(&m, 0, "flipped.h5", path);
  const char *name = "model.layers.1.self_attn.v_proj.weight";
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, "/model/model.layers.1.self_attn.v_proj.weight", H5P_DEFAULT);
  const haddr_t offset = H5Dget_offset(d);
  H5Dclose(d);
  H5Fclose(f);
  CHECK(offset != HADDR_UNDEF, "contiguous dataset offset");
  /* one bit of the third float's mantissa, the way a failing disk would do it */
  const int fd = open(path, O_RDWR);
  unsigned char byte;
  if (fd < 0 || pread(fd, &byte, 1, (off_t)offset + 9) != 1) exit(2);
  byte ^= 0x01;
  if (pwrite(fd, &byte, 1, (off_t)offset + 9) != 1 || close(fd)) exit(2);
  expect_load_error(path, "flipped byte", name, "crc32");
  model_free(&m);
}

static void test_load_names_dataset_with_wrong_shape(void) {
  model m;
  char path[PATH_MAX];
  save_fresh(&m, 0, "shape.h5", path);
  hid_t f = open_rw(path);
  H5Ldelete(f, "/model/model.layers.0.mlp.gate_proj.weight", H5P_DEFAULT);
  const hsize_t dims[2] = {8, 12}; /* transposed: gate_proj is (F=12, C=8) */
  hid_t g = H5Gopen2(f, "model", H5P_DEFAULT);
  write_float_dataset(g, "model.layers.0.mlp.gate_proj.weight", 2, dims);
  H5Gclose(g);
  H5Fclose(f);
  expect_load_error(path, "wrong shape", "/model/model.layers.0.mlp.gate_proj.weight",
                    "has shape [8, 12], expected [12, 8]");
  model_free(&m);
}

static void test_load_names_missing_dataset(void) {
  model m;
  char path[PATH_MAX];
  save_fresh(&m, 1, "missing.h5", path);
  hid_t f = open_rw(path);
  H5Ldelete(f, "/model/model.norm.weight", H5P_DEFAULT);
  H5Fclose(f);
  expect_load_error(path, "missing dataset", "/model/model.norm.weight", "missing");
  model_free(&m);
}

static void test_load_names_unknown_dataset(void) {
  model m;
  char path[PATH_MAX];
  save_fresh(&m, 1, "unknown.h5", path);
  hid_t f = open_rw(path);
  const hsize_t dims[2] = {11, 8};
  hid_t g = H5Gopen2(f, "model", H5P_DEFAULT);
  write_float_dataset(g, "lm_head.weight", 2, dims); /* the model is tied: no head of its own */
  H5Gclose(g);
  H5Fclose(f);
  expect_load_error(path, "unknown dataset", "/model/lm_head.weight", NULL);
  model_free(&m);
}

static void test_load_refuses_other_format_version(void) {
  model m;
  char path[PATH_MAX];
  save_fresh(&m, 0, "version.h5", path);
  hid_t f = open_rw(path);
  write_int_attr(f, "gorp_format_version", 2);
  H5Fclose(f);
  expect_load_error(path, "format version", "gorp_format_version is 2", NULL);
  model_config cfg;
  capture_begin();
  const int rc = modelfile_read_config(path, &cfg);
  free(capture_end());
  CHECK(rc == GORP_EINPUT, "read_config checks the version too");
  model_free(&m);
}

static void test_load_refuses_file_that_is_not_hdf5(void) {
  char path[PATH_MAX];
  fmt_path(path, "%s/not.h5", tmp_dir);
  FILE *f = fopen(path, "w");
  if (!f || fputs("hello", f) < 0 || fclose(f)) exit(2);
  expect_load_error(path, "not HDF5", "not an HDF5 file", NULL);
  fmt_path(path, "%s/absent.h5", tmp_dir);
  expect_load_error(path, "absent file", "cannot open model file", NULL);
}

static void test_load_reads_model_group_inside_a_checkpoint(void) {
  model m, back;
  char path[PATH_MAX];
  save_fresh(&m, 0, "ckpt.h5", path);
  hid_t f = open_rw(path);
  hid_t g = H5Gcreate2(f, "optim", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  const hsize_t dims[1] = {3};
  write_float_dataset(g, "adam_m", 1, dims);
  H5Gclose(g);
  /* a checkpoint says it is one; /model is read all the same */
  H5Adelete(f, "gorp_file_kind");
  hid_t type = H5Tcopy(H5T_C_S1), scalar = H5Screate(H5S_SCALAR);
  H5Tset_size(type, 10);
  hid_t a = H5Acreate2(f, "gorp_file_kind", type, scalar, H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0 || H5Awrite(a, type, "checkpoint") < 0) exit(2);
  H5Aclose(a);
  H5Sclose(scalar);
  H5Tclose(type);
  H5Fclose(f);
  CHECK(modelfile_load(&back, path) == GORP_OK, "load /model of a checkpoint");
  CHECK(back.n_params == m.n_params && !memcmp(back.params, m.params, m.n_params * sizeof(float)),
        "checkpoint's /model is bit-exact");
  model_free(&back);
  model_free(&m);
}

static void test_failed_save_leaves_existing_file_and_no_tmp(void) {
  model old, fresh, back;
  char path[PATH_MAX], tmp[PATH_MAX];
  save_fresh(&old, 0, "keep.h5", path);
  make_model(&fresh, 0);
  for (size_t i = 0; i < fresh.n_params; i++) fresh.params[i] = 1.0f;

  /* the temporary file cannot be created: the save fails before touching path */
  fmt_path(tmp, "%s.tmp", path);
  if (mkdir(tmp, 0700)) exit(2);
  capture_begin();
  int rc = modelfile_save(&fresh, path, NULL);
  char *msg = capture_end();
  CHECK(rc != GORP_OK && strstr(msg, path), "save over a blocked tmp fails naming it:\n%s", msg);
  free(msg);
  rmdir(tmp);
  CHECK(modelfile_load(&back, path) == GORP_OK &&
            !memcmp(back.params, old.params, old.n_params * sizeof(float)),
        "the earlier file is unchanged");
  model_free(&back);

  /* the rename fails (path is a directory): the written tmp file is removed */
  fmt_path(path, "%s/adir.h5", tmp_dir);
  fmt_path(tmp, "%s.tmp", path);
  if (mkdir(path, 0700)) exit(2);
  capture_begin();
  rc = modelfile_save(&fresh, path, "{}");
  msg = capture_end();
  CHECK(rc == GORP_EIO && strstr(msg, "rename"), "rename onto a directory fails:\n%s", msg);
  free(msg);
  struct stat st;
  CHECK(access(tmp, F_OK) != 0 && !stat(path, &st) && S_ISDIR(st.st_mode),
        "no tmp file left, the directory untouched");
  model_free(&fresh);
  model_free(&old);
}

int main(void) {
  const char *base = getenv("TMPDIR");
  fmt_path(tmp_dir, "%s/gorp-test-modelfile-XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmp_dir)) {
    perror("test_modelfile: mkdtemp");
    return 2;
  }
  test_f16_known_bit_patterns_convert_exactly();
  test_every_f16_matches_ldexp_reference();
  test_every_bf16_matches_ldexp_reference();
  test_crc32_is_zlib_crc_of_little_endian_bytes();
  test_crc32_parts_combine_to_crc32_of_the_whole();
  test_block_dataset_concatenates_matrices_from_memory_with_gaps();
  test_safetensors_reads_f32_f16_bf16();
  test_safetensors_refuses_broken_headers();
  test_safetensors_refuses_to_read_integer_dtype();
  test_save_load_round_trip_is_bit_exact_untied_and_tied();
  test_load_names_dataset_with_flipped_byte();
  test_load_names_dataset_with_wrong_shape();
  test_load_names_missing_dataset();
  test_load_names_unknown_dataset();
  test_load_refuses_other_format_version();
  test_load_refuses_file_that_is_not_hdf5();
  test_load_reads_model_group_inside_a_checkpoint();
  test_failed_save_leaves_existing_file_and_no_tmp();
  rm_tree(tmp_dir);
  return tests_finish();
}
