/* Writes results.h5 (see cl_results.h): a fresh tmp file, then fs_publish. */
#include "gorp/cl_results.h"

#include "gorp/cl_metrics.h"
#include "gorp/err.h"
#include "gorp/fsutil.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int write_matrix(hid_t file, const char *name, const double *x, int T) {
  hsize_t dims[2] = {(hsize_t)T + 1, (hsize_t)T};
  hid_t space, ds;
  GORP_H5(space = H5Screate_simple(2, dims, NULL));
  GORP_H5(ds =
              H5Dcreate2(file, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  GORP_H5(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x));
  GORP_H5(H5Dclose(ds));
  GORP_H5(H5Sclose(space));
  return GORP_OK;
}

/* A scalar (n = 0) or 1-D array of n variable-length UTF-8 strings. */
static int write_strings(hid_t obj, const char *key, const char *const *s, int n) {
  hid_t type, space, attr;
  hsize_t dim = (hsize_t)n;
  GORP_H5(type = H5Tcopy(H5T_C_S1));
  GORP_H5(H5Tset_size(type, H5T_VARIABLE));
  GORP_H5(H5Tset_cset(type, H5T_CSET_UTF8));
  GORP_H5(space = n ? H5Screate_simple(1, &dim, NULL) : H5Screate(H5S_SCALAR));
  GORP_H5(attr = H5Acreate2(obj, key, type, space, H5P_DEFAULT, H5P_DEFAULT));
  GORP_H5(H5Awrite(attr, type, s));
  GORP_H5(H5Aclose(attr));
  GORP_H5(H5Sclose(space));
  GORP_H5(H5Tclose(type));
  return GORP_OK;
}

static int write_scalar(hid_t obj, const char *key, hid_t file_type, hid_t mem_type,
                        const void *v) {
  hid_t space, attr;
  GORP_H5(space = H5Screate(H5S_SCALAR));
  GORP_H5(attr = H5Acreate2(obj, key, file_type, space, H5P_DEFAULT, H5P_DEFAULT));
  GORP_H5(H5Awrite(attr, mem_type, v));
  GORP_H5(H5Aclose(attr));
  GORP_H5(H5Sclose(space));
  return GORP_OK;
}

static int write_file(const cl_results *r, hid_t f) {
  cl_summary s;
  cl_metrics(&s, r->acc, r->T);
  GORP_CALL(write_matrix(f, "acc_matrix", r->acc, r->T));
  GORP_CALL(write_matrix(f, "in_list", r->in_list, r->T));
  GORP_CALL(write_strings(f, "tasks", (const char *const *)r->tasks, r->T));
  GORP_CALL(write_strings(f, "method", &r->method, 0));
  GORP_CALL(write_strings(f, "order", &r->order, 0));
  GORP_CALL(write_scalar(f, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, &r->seed));
  const struct {
    const char *key;
    double v;
  } m[] = {{"AP", s.ap}, {"BWT", s.bwt}, {"FWT", s.fwt}, {"forgetting", s.forgetting}};
  for (int i = 0; i < 4; i++)
    GORP_CALL(write_scalar(f, m[i].key, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &m[i].v));
  return GORP_OK;
}

int cl_results_write(const cl_results *r, const char *path) {
  char tmp[4096];
  if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
    GORP_ERR(GORP_EINPUT, "path too long: %s", path);
  hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) GORP_ERR(GORP_EIO, "cannot create %s", tmp);
  int rc = write_file(r, f);
  if (H5Fclose(f) < 0 && !rc)
    rc = gorp_error(__FILE__, __LINE__, __func__, GORP_EIO, "%s: close failed", tmp);
  if (!rc) rc = fs_publish(tmp, path);
  if (rc) {
    unlink(tmp);
    GORP_ERR(rc, "could not write %s", path);
  }
  return GORP_OK;
}
