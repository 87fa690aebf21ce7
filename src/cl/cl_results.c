/* Writes results.h5 (see cl_results.h): a fresh tmp file, then h5io_close_publish; and keeps the
 * run's history (loss curves, times) that it records. */
#include "gorp/cl_results.h"

#include "gorp/cl_metrics.h"
#include "gorp/err.h"
#include "gorp/h5io.h"
#include "gorp/version.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A 1-D array attribute of n variable-length UTF-8 strings. */
static int write_strings(hid_t obj, const char *key, const char *const *s, int n) {
  hid_t type, space, attr;
  hsize_t dim = (hsize_t)n;
  GORP_H5(type = H5Tcopy(H5T_C_S1));
  GORP_H5(H5Tset_size(type, H5T_VARIABLE));
  GORP_H5(H5Tset_cset(type, H5T_CSET_UTF8));
  GORP_H5(space = H5Screate_simple(1, &dim, NULL));
  GORP_H5(attr = H5Acreate2(obj, key, type, space, H5P_DEFAULT, H5P_DEFAULT));
  GORP_H5(H5Awrite(attr, type, s));
  GORP_H5(H5Aclose(attr));
  GORP_H5(H5Sclose(space));
  GORP_H5(H5Tclose(type));
  return GORP_OK;
}

/* /loss_curves/task_TT (mtl: /loss_curves/mtl): each trained curve, its dataset name as attribute
 * task. */
static int write_curves(const cl_results *r, hid_t f, const char *path) {
  hid_t g;
  GORP_CALL(h5io_create_group(f, "loss_curves", path, &g));
  int rc = GORP_OK;
  for (int i = 0; i < r->n_curves && !rc; i++) {
    if (!r->curves[i]) continue;
    char name[32];
    snprintf(name, sizeof(name), r->mtl ? "mtl" : "task_%02d", i + 1);
    const hsize_t n = (hsize_t)r->curve_len[i];
    rc = h5io_write_floats(g, name, 1, &n, r->curves[i], path);
    const hid_t ds = rc ? -1 : H5Dopen2(g, name, H5P_DEFAULT);
    if (!rc && ds < 0) rc = GORP_ERROR(GORP_ELIB, "%s: cannot open loss_curves/%s", path, name);
    if (!rc) rc = h5io_write_str_attr(ds, "task", r->mtl ? "mtl" : r->tasks[i], path);
    if (ds >= 0) H5Dclose(ds);
  }
  H5Gclose(g);
  return rc;
}

static int write_file(const cl_results *r, hid_t f, const char *path) {
  cl_summary s;
  cl_metrics(&s, r->acc, r->T);
  const hsize_t dims[2] = {(hsize_t)r->T + 1, (hsize_t)r->T};
  GORP_CALL(h5io_write_doubles(f, "acc_matrix", 2, dims, r->acc, path));
  GORP_CALL(h5io_write_doubles(f, "in_list", 2, dims, r->in_list, path));
  GORP_CALL(write_strings(f, "tasks", (const char *const *)r->tasks, r->T));
  GORP_CALL(h5io_write_str_attr(f, "method", r->method, path));
  GORP_CALL(h5io_write_str_attr(f, "name", r->name, path));
  GORP_CALL(h5io_write_str_attr(f, "gorp_version", gorp_version(), path));
  GORP_CALL(h5io_write_str_attr(f, "order", r->order, path));
  GORP_CALL(h5io_write_attr(f, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, &r->seed, path));
  const struct {
    const char *key;
    double v;
  } m[] = {{"AP", s.ap}, {"BWT", s.bwt}, {"FWT", s.fwt}, {"forgetting", s.forgetting}};
  for (int i = 0; i < 4; i++)
    GORP_CALL(h5io_write_attr(f, m[i].key, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &m[i].v, path));
  if (!r->n_curves) return GORP_OK;
  GORP_CALL(write_curves(r, f, path));
  /* what differs between runs whose results are equal (another eval.batch_size, a resume, the
   * machine's speed) goes in /run, which a comparison can leave out (h5diff --exclude-path /run) */
  hid_t g;
  GORP_CALL(h5io_create_group(f, "run", path, &g));
  int rc = r->config_text ? h5io_write_str_attr(g, "config", r->config_text, path) : GORP_OK;
  if (!rc)
    rc = h5io_write_array_attr(g, "train_seconds", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, r->train_s,
                               r->n_curves, path);
  if (!rc)
    rc = h5io_write_array_attr(g, "eval_seconds", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, r->eval_s,
                               r->T + 1, path);
  H5Gclose(g);
  return rc;
}

int cl_results_history(cl_results *r, int mtl) {
  const int n_curves = mtl ? 1 : r->T;
  r->mtl = mtl;
  r->n_curves = n_curves;
  GORP_ALLOC(r->curves, n_curves, "loss curves");
  GORP_ALLOC(r->curve_len, n_curves, "loss curve lengths");
  GORP_ALLOC(r->train_s, n_curves, "training times");
  GORP_ALLOC(r->eval_s, r->T + 1, "evaluation times");
  for (int i = 0; i < n_curves; i++) {
    r->curves[i] = NULL;
    r->curve_len[i] = 0;
    r->train_s[i] = NAN;
  }
  for (int i = 0; i <= r->T; i++) r->eval_s[i] = NAN;
  return GORP_OK;
}

int cl_results_set_curve(cl_results *r, int i, const float *losses, int n, double seconds) {
  float *x;
  GORP_ALLOC(x, n, "a loss curve");
  memcpy(x, losses, (size_t)n * sizeof(float));
  free(r->curves[i]);
  r->curves[i] = x;
  r->curve_len[i] = n;
  r->train_s[i] = seconds;
  return GORP_OK;
}

void cl_results_history_free(cl_results *r) {
  for (int i = 0; i < r->n_curves; i++) free(r->curves[i]);
  free(r->curves);
  free(r->curve_len);
  free(r->train_s);
  free(r->eval_s);
  r->n_curves = 0;
}

int cl_results_write(const cl_results *r, const char *path) {
  char tmp[4096];
  if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
    GORP_ERR(GORP_EINPUT, "path too long: %s", path);
  hid_t f;
  GORP_CALL(h5io_create(tmp, &f));
  /* closed by h5io: a close that fails for space would crash HDF5 1.10 at exit */
  const int rc = h5io_close_publish(f, write_file(r, f, tmp), tmp, path, NULL);
  if (rc) GORP_ERR(rc, "could not write %s", path);
  return GORP_OK;
}
