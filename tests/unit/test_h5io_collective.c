/* Collective model files (h5io.h, modelfile.h) under every TP x DP layout of the world: a model
 * saved by p ranks holds the logical tensors, byte for byte the file one process writes (values
 * and crc32 attributes); it loads under every other layout bit-exactly; a 1-D dataset of every
 * tensor's shards at their places in memory (an optimizer's moments) is their logical
 * concatenation; and a damaged byte in one rank's shard, or in a tensor every rank holds, is
 * refused by every rank with GORP_EINPUT and the dataset named, with no rank left waiting.
 *
 * How it runs. Started by an MPI launcher it is an MPI program: tests/cli/h5io_collective.sh runs
 * it with p = 1, 2, 3, 4 under `mpirun --oversubscribe` (p = 3: thirds of every split axis).
 * Started plainly (ctest's unit run, with LeakSanitizer on) it calls no MPI, since Open MPI leaks
 * by design at MPI_Init; the one-process paths are in test_modelfile.c. The model (hidden 12, 6
 * heads of 2, 6 key/value heads, intermediate 12) splits over tp = 1, 2 and 3; rank 0 prints the
 * verdict. */
#include "gorp/config.h"
#include "gorp/dist.h"
#include "gorp/err.h"
#include "gorp/h5io.h"
#include "gorp/model.h"
#include "gorp/model_state.h"
#include "gorp/modelfile.h"
#include "testutil.h"

#include <hdf5.h>
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int rank, nprocs;
static char dir[PATH_MAX]; /* rank 0's temporary folder, shared with the others */

static const model_config arch = {.vocab_size = 7,
                                  .hidden_size = 12,
                                  .intermediate_size = 12,
                                  .num_layers = 2,
                                  .num_heads = 6,
                                  .num_kv_heads = 6,
                                  .head_dim = 2,
                                  .max_seq = 16,
                                  .rms_eps = 1e-5f,
                                  .rope_theta = 10000.0f,
                                  .tie_embeddings = 0};

/* The layout tp x dp of the world (dist_init, as gorp run makes it). */
static void make_dist(dist *d, int tp) {
  if (dist_init(d, tp, nprocs / tp)) MPI_Abort(MPI_COMM_WORLD, 2);
}

/* This rank's shard of the model under d, with the same logical values under every layout. */
static void make_model(model *m, const dist *d) {
  if (model_create_tp(m, &arch, d)) MPI_Abort(MPI_COMM_WORLD, 2);
  model_init_random(m, 7, 0.5f, 0.5f);
}

static int same_shards(const model *a, const model *b) {
  if (a->n_tensors != b->n_tensors) return 0;
  for (int i = 0; i < a->n_tensors; i++) {
    const param_tensor *t = &a->tensors[i];
    const size_t n = (size_t)(t->shape[0] * t->shape[1]);
    if (memcmp(a->params + t->offset, b->params + b->tensors[i].offset, n * sizeof(float)))
      return 0;
  }
  return 1;
}

/* Every dataset of a and b (whole, with serial HDF5) holds the same bytes and crc32; rank 0. */
static int same_file(const char *a, const char *b, const model *m, char *why, size_t size) {
  hid_t fa = H5Fopen(a, H5F_ACC_RDONLY, H5P_DEFAULT), fb = H5Fopen(b, H5F_ACC_RDONLY, H5P_DEFAULT);
  int same = fa >= 0 && fb >= 0;
  for (int i = 0; same && i < m->n_tensors; i++) {
    const param_tensor *t = &m->tensors[i];
    char name[128];
    snprintf(name, sizeof(name), "model/%s", t->name);
    const size_t n = (size_t)(t->full[0] * t->full[1]);
    float *x = calloc(2 * n, sizeof(float));
    uint32_t crc[2] = {0, 1};
    for (int k = 0; k < 2; k++) {
      hid_t ds = H5Dopen2(k ? fb : fa, name, H5P_DEFAULT), at = H5Aopen(ds, "crc32", H5P_DEFAULT);
      if (ds < 0 || at < 0 ||
          H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x + k * n) < 0 ||
          H5Aread(at, H5T_NATIVE_UINT32, &crc[k]) < 0)
        same = 0;
      H5Aclose(at);
      H5Dclose(ds);
    }
    if (same && (crc[0] != crc[1] || memcmp(x, x + n, n * sizeof(float)))) {
      snprintf(why, size, "%s differs (crc32 0x%08x / 0x%08x)", name, crc[0], crc[1]);
      same = 0;
    }
    free(x);
  }
  H5Fclose(fa);
  H5Fclose(fb);
  return same;
}

/* Flips 4 bytes of dataset name at element `at` (rank 0, serial HDF5 for the offset). */
static void flip(const char *path, const char *name, size_t at) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), d = H5Dopen2(f, name, H5P_DEFAULT);
  const haddr_t off = H5Dget_offset(d);
  H5Dclose(d);
  H5Fclose(f);
  FILE *fp = fopen(path, "r+b");
  unsigned char b[4];
  if (!fp || off == HADDR_UNDEF || fseek(fp, (long)(off + at * sizeof(float)), SEEK_SET) ||
      fread(b, 1, 4, fp) != 4)
    MPI_Abort(MPI_COMM_WORLD, 2);
  for (int i = 0; i < 4; i++) b[i] ^= 0xFF;
  fseek(fp, (long)(off + at * sizeof(float)), SEEK_SET);
  fwrite(b, 1, 4, fp);
  fclose(fp);
}

/* Every rank fails to load path with GORP_EINPUT and names the dataset; the worst over ranks. */
static void expect_damage_refused(const char *path, const dist *d, const char *dataset,
                                  const char *what) {
  model m;
  capture_begin();
  const int rc = modelfile_load_tp(&m, path, d, NULL);
  char *msg = capture_end();
  char needle[160];
  snprintf(needle, sizeof(needle), "%s is damaged", dataset);
  int ok = rc == GORP_EINPUT && strstr(msg, path) && strstr(msg, needle) && m.params == NULL, all;
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (!ok) printf("rank %d: rc %d, message:\n%s\n", rank, rc, msg);
  if (rank == 0)
    CHECK(all, "%s (tp %d): refused on every rank naming %s", what, d->tp_size, needle);
  free(msg);
}

/* Saves under layout tp_w and checks the file, the loads under every layout, the 1-D dataset of
 * every shard and the refusal of damage. */
static void test_layout(int tp_w, const int *tps, int n_tps) {
  dist dw;
  make_dist(&dw, tp_w);
  model m;
  make_model(&m, &dw);
  char path[PATH_MAX], serial[PATH_MAX], why[256] = "";
  fmt_path(path, "%s/tp%d.h5", dir, tp_w);
  fmt_path(serial, "%s/serial.h5", dir);
  int rc = modelfile_save_tp(&m, path, NULL, &dw), worst;
  MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0) {
    CHECK(worst == GORP_OK && access(path, F_OK) == 0, "tp %d dp %d: saved by every rank", tp_w,
          dw.dp_size);
    model whole;
    make_model(&whole, NULL);
    if (modelfile_save(&whole, serial, NULL)) MPI_Abort(MPI_COMM_WORLD, 2);
    CHECK(same_file(path, serial, &whole, why, sizeof(why)),
          "tp %d dp %d: the file is byte for byte the one process's file: %s", tp_w, dw.dp_size,
          why);
    model_free(&whole);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  for (int k = 0; k < n_tps; k++) { /* loads under every layout */
    dist dr;
    make_dist(&dr, tps[k]);
    model want, got;
    make_model(&want, &dr);
    rc = modelfile_load_tp(&got, path, &dr, NULL);
    int ok = rc == GORP_OK && same_shards(&want, &got), all;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (rank == 0)
      CHECK(all, "saved with tp %d dp %d, loaded with tp %d dp %d: bit-exact shards", tp_w,
            dw.dp_size, tps[k], dr.dp_size);
    if (rc == GORP_OK) model_free(&got);
    model_free(&want);
    dist_free(&dr);
  }

  /* every shard at its place in a buffer, one 1-D dataset: the logical concatenation */
  h5io_block *b = calloc((size_t)m.n_tensors, sizeof(*b));
  uint64_t base = 0;
  for (int i = 0; i < m.n_tensors; i++) {
    b[i] = model_tensor_block(&m.tensors[i], base);
    b[i].mem = m.tensors[i].offset;
    base += (uint64_t)(m.tensors[i].full[0] * m.tensors[i].full[1]);
  }
  const hsize_t total = base;
  const h5io_data s = {"all", H5T_NATIVE_FLOAT, 1, &total, b, m.n_tensors};
  char flat[PATH_MAX];
  fmt_path(flat, "%s/flat%d.h5", dir, tp_w);
  hid_t f;
  rc = h5io_create_par(flat, &dw, &f);
  if (!rc) {
    rc = h5io_write_part(f, &s, m.params, &dw, flat);
    H5Fclose(f);
  }
  float *back = calloc(m.n_params, sizeof(float));
  if (!rc) rc = h5io_open_read_par(flat, "test file", &dw, &f);
  if (!rc) {
    rc = h5io_read_part(f, &s, back, &dw, flat);
    H5Fclose(f);
  }
  int ok = rc == GORP_OK, all;
  for (int i = 0; ok && i < m.n_tensors; i++) {
    const param_tensor *t = &m.tensors[i];
    ok = !memcmp(back + t->offset, m.params + t->offset,
                 (size_t)(t->shape[0] * t->shape[1]) * sizeof(float));
  }
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (rank == 0) {
    model whole;
    make_model(&whole, NULL);
    float *x = calloc(whole.n_params, sizeof(float));
    hid_t fs = H5Fopen(flat, H5F_ACC_RDONLY, H5P_DEFAULT), ds = H5Dopen2(fs, "all", H5P_DEFAULT);
    const int read = H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0;
    H5Dclose(ds);
    H5Fclose(fs);
    CHECK(all && read && total == whole.n_params &&
              !memcmp(x, whole.params, whole.n_params * sizeof(float)),
          "tp %d dp %d: shards written into a 1-D dataset form the logical concatenation and "
          "read back to their places",
          tp_w, dw.dp_size);
    free(x);
    model_free(&whole);
  }
  free(back);
  free(b);

  /* damage: one byte in the last TP rank's rows of a q_proj, then in the embedding */
  if (rank == 0) flip(path, "model/model.layers.1.self_attn.q_proj.weight", 12 * 12 - 5);
  MPI_Barrier(MPI_COMM_WORLD);
  expect_damage_refused(path, &dw, "/model/model.layers.1.self_attn.q_proj.weight",
                        "a flipped byte in one shard");
  if (rank == 0) {
    flip(path, "model/model.layers.1.self_attn.q_proj.weight", 12 * 12 - 5);
    flip(path, "model/model.embed_tokens.weight", 3);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  expect_damage_refused(path, &dw, "/model/model.embed_tokens.weight",
                        "a flipped byte in a tensor every rank holds");
  model_free(&m);
  dist_free(&dw);
}

int main(int argc, char **argv) {
  if (!launched_by_mpi()) {
    printf("note: the collective checks run under mpirun: tests/cli/h5io_collective.sh runs this "
           "binary with p = 1, 2, 3, 4\n");
    return tests_finish();
  }
  MPI_Init(&argc, &argv);
  /* the refusals are checked through gorp's own messages */
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nprocs);
  if (rank == 0) {
    const char *base = getenv("TMPDIR");
    fmt_path(dir, "%s/gorp-test-h5io-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir)) MPI_Abort(MPI_COMM_WORLD, 2);
  }
  MPI_Bcast(dir, PATH_MAX, MPI_CHAR, 0, MPI_COMM_WORLD);
  int tps[3], n_tps = 0;
  for (int tp = 1; tp <= 3; tp++)
    if (nprocs % tp == 0) tps[n_tps++] = tp;
  for (int k = 0; k < n_tps; k++) test_layout(tps[k], tps, n_tps);
  int fails = n_fail, all_fails = 0;
  MPI_Allreduce(&fails, &all_fails, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) {
    rm_tree(dir);
    n_fail = all_fails;
    tests_finish();
  }
  MPI_Finalize();
  return all_fails != 0;
}
