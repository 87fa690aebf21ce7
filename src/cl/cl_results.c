/* Writes results.h5 (see cl_results.h): a fresh tmp file, then h5io_close_publish. */
#include "gorp/cl_results.h"

#include "gorp/cl_metrics.h"
#include "gorp/err.h"
#include "gorp/h5io.h"
#include "gorp/version.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>

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

static int write_file(const cl_results *r, hid_t f, const char *path) {
  cl_summary s;
  cl_metrics(&s, r->acc, r->T);
  const hsize_t dims[2] = {(hsize_t)r->T + 1, (hsize_t)r->T};
  GORP_CALL(h5io_write_doubles(f, "acc_matrix", 2, dims, r->acc, path));
  GORP_CALL(h5io_write_doubles(f, "in_list", 2, dims, r->in_list, path));
  GORP_CALL(write_strings(f, "tasks", (const char *const *)r->tasks, r->T));
  GORP_CALL(h5io_write_str_attr(f, "method", r->method, path));
  GORP_CALL(h5io_write_str_attr(f, "gorp_version", gorp_version(), path));
  GORP_CALL(h5io_write_str_attr(f, "order", r->order, path));
  GORP_CALL(h5io_write_attr(f, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, &r->seed, path));
  const struct {
    const char *key;
    double v;
  } m[] = {{"AP", s.ap}, {"BWT", s.bwt}, {"FWT", s.fwt}, {"forgetting", s.forgetting}};
  for (int i = 0; i < 4; i++)
    GORP_CALL(h5io_write_attr(f, m[i].key, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &m[i].v, path));
  return GORP_OK;
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
