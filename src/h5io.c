/* HDF5 building blocks with checksums (see h5io.h). */
#include "gorp/h5io.h"

#include "gorp/crc.h"
#include "gorp/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A file access list whose H5Fclose also closes every object still open in the file. */
static hid_t strong_fapl(void) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl >= 0 && H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
    H5Pclose(fapl);
    return -1;
  }
  return fapl;
}

int h5io_create(const char *path, hid_t *file) {
  /* a plain open first: its errno says why the file cannot be created, in one line */
  const int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
  if (fd < 0) GORP_ERR(GORP_EIO, "cannot create %s: %s", path, strerror(errno));
  close(fd);
  hid_t fapl;
  GORP_H5(fapl = strong_fapl());
  *file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  H5Pclose(fapl);
  if (*file < 0) GORP_ERR(GORP_EIO, "cannot create %s", path);
  return GORP_OK;
}

int h5io_open_read(const char *path, const char *what, hid_t *file) {
  FILE *f = fopen(path, "rb");
  if (!f) GORP_ERR(GORP_EINPUT, "cannot open %s %s: %s", what, path, strerror(errno));
  fclose(f);
  if (H5Fis_hdf5(path) <= 0) GORP_ERR(GORP_EINPUT, "%s is not an HDF5 file", path);
  hid_t fapl;
  GORP_H5(fapl = strong_fapl());
  *file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
  H5Pclose(fapl);
  if (*file < 0) GORP_ERR(GORP_EINPUT, "cannot open HDF5 file %s (damaged?)", path);
  return GORP_OK;
}

int h5io_write_attr(hid_t obj, const char *key, hid_t file_type, hid_t mem_type, const void *v,
                    const char *path) {
  hid_t space, attr;
  GORP_H5(space = H5Screate(H5S_SCALAR));
  attr = H5Acreate2(obj, key, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
  H5Sclose(space);
  if (attr < 0 || H5Awrite(attr, mem_type, v) < 0)
    GORP_ERR(GORP_EIO, "%s: cannot write attribute %s", path, key);
  GORP_H5(H5Aclose(attr));
  return GORP_OK;
}

static hid_t vlen_utf8_type(void) {
  hid_t type = H5Tcopy(H5T_C_S1);
  if (type >= 0 && (H5Tset_size(type, H5T_VARIABLE) < 0 || H5Tset_cset(type, H5T_CSET_UTF8) < 0)) {
    H5Tclose(type);
    return -1;
  }
  return type;
}

int h5io_write_str_attr(hid_t obj, const char *key, const char *s, const char *path) {
  hid_t type;
  GORP_H5(type = vlen_utf8_type());
  const int rc = h5io_write_attr(obj, key, type, type, &s, path);
  H5Tclose(type);
  return rc;
}

int h5io_read_num_attr(hid_t obj, const char *obj_name, const char *key, int float_ok,
                       hid_t mem_type, void *out, const char *path) {
  if (H5Aexists(obj, key) <= 0)
    GORP_ERR(GORP_EINPUT, "%s: %s has no attribute %s", path, obj_name, key);
  hid_t attr, type, space;
  GORP_H5(attr = H5Aopen(obj, key, H5P_DEFAULT));
  GORP_H5(type = H5Aget_type(attr));
  GORP_H5(space = H5Aget_space(attr));
  const H5T_class_t cls = H5Tget_class(type);
  const hssize_t npoints = H5Sget_simple_extent_npoints(space);
  H5Tclose(type);
  H5Sclose(space);
  if (npoints != 1 || !(cls == H5T_INTEGER || (float_ok && cls == H5T_FLOAT)))
    GORP_ERR(GORP_EINPUT, "%s: attribute %s of %s must be a single %s", path, key, obj_name,
             float_ok ? "number" : "integer");
  if (H5Aread(attr, mem_type, out) < 0)
    GORP_ERR(GORP_EINPUT, "%s: cannot read attribute %s of %s", path, key, obj_name);
  GORP_H5(H5Aclose(attr));
  return GORP_OK;
}

int h5io_read_str_attr(hid_t obj, const char *obj_name, const char *key, char **out,
                       const char *path) {
  if (H5Aexists(obj, key) <= 0)
    GORP_ERR(GORP_EINPUT, "%s: %s has no attribute %s", path, obj_name, key);
  hid_t attr, type, mem;
  GORP_H5(attr = H5Aopen(obj, key, H5P_DEFAULT));
  GORP_H5(type = H5Aget_type(attr));
  const int is_vlen = H5Tget_class(type) == H5T_STRING && H5Tis_variable_str(type) > 0;
  H5Tclose(type);
  if (!is_vlen)
    GORP_ERR(GORP_EINPUT, "%s: attribute %s of %s is not a string", path, key, obj_name);
  GORP_H5(mem = vlen_utf8_type());
  char *s = NULL;
  const herr_t e = H5Aread(attr, mem, &s);
  H5Tclose(mem);
  H5Aclose(attr);
  if (e < 0 || !s) GORP_ERR(GORP_EINPUT, "%s: cannot read attribute %s of %s", path, key, obj_name);
  *out = strdup(s);
  H5free_memory(s);
  if (!*out) GORP_ERR(GORP_EMEM, "out of memory reading %s", path);
  return GORP_OK;
}

/* "<loc path>/<name>" for messages ("/model/x"; at the root "/x"). */
static void full_name(char *buf, size_t size, hid_t loc, const char *name) {
  char grp[512] = "";
  if (H5Iget_name(loc, grp, sizeof(grp)) < 0) grp[0] = '\0';
  snprintf(buf, size, "%s/%s", strcmp(grp, "/") ? grp : "", name);
}

static int write_data(hid_t loc, const char *name, int ndim, const hsize_t *dims, hid_t file_type,
                      hid_t mem_type, const void *x, size_t bytes, const char *path) {
  hid_t space, lcpl, d;
  GORP_H5(space = H5Screate_simple(ndim, dims, NULL));
  GORP_H5(lcpl = H5Pcreate(H5P_LINK_CREATE));
  GORP_H5(H5Pset_create_intermediate_group(lcpl, 1));
  d = H5Dcreate2(loc, name, file_type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  H5Sclose(space);
  H5Pclose(lcpl);
  char where[768];
  full_name(where, sizeof(where), loc, name);
  if (d < 0 || H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) < 0)
    GORP_ERR(GORP_EIO, "%s: cannot write dataset %s", path, where);
  const uint32_t crc = crc32_bytes(x, bytes);
  GORP_CALL(h5io_write_attr(d, "crc32", H5T_STD_U32LE, H5T_NATIVE_UINT32, &crc, path));
  GORP_H5(H5Dclose(d));
  return GORP_OK;
}

static size_t count(int ndim, const hsize_t *dims) {
  size_t n = 1;
  for (int i = 0; i < ndim; i++) n *= (size_t)dims[i];
  return n;
}

int h5io_write_floats(hid_t loc, const char *name, int ndim, const hsize_t *dims, const float *x,
                      const char *path) {
  return write_data(loc, name, ndim, dims, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, x,
                    count(ndim, dims) * sizeof(float), path);
}

int h5io_write_doubles(hid_t loc, const char *name, int ndim, const hsize_t *dims, const double *x,
                       const char *path) {
  return write_data(loc, name, ndim, dims, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, x,
                    count(ndim, dims) * sizeof(double), path);
}

static void format_dims(char *buf, size_t size, const hsize_t *dims, int ndim) {
  size_t used = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < ndim && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%llu", i ? ", " : "",
                             (unsigned long long)dims[i]);
  if (used < size) snprintf(buf + used, size - used, "]");
}

static int read_data(hid_t loc, const char *name, int ndim, const hsize_t *want, hid_t mem_type,
                     void *x, size_t bytes, const char *path) {
  char where[768];
  full_name(where, sizeof(where), loc, name);
  if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
    GORP_ERR(GORP_EINPUT, "%s: dataset %s is missing", path, where);
  hid_t d, type, space;
  GORP_H5(d = H5Oopen(loc, name, H5P_DEFAULT));
  if (H5Iget_type(d) != H5I_DATASET) GORP_ERR(GORP_EINPUT, "%s: %s is not a dataset", path, where);
  GORP_H5(type = H5Dget_type(d));
  const H5T_class_t cls = H5Tget_class(type);
  H5Tclose(type);
  if (cls != H5T_FLOAT)
    GORP_ERR(GORP_EINPUT, "%s: dataset %s is not floating-point (%s expected)", path, where,
             mem_type == H5T_NATIVE_FLOAT ? "float32" : "float64");
  GORP_H5(space = H5Dget_space(d));
  hsize_t dims[H5S_MAX_RANK];
  const int got_ndim = H5Sget_simple_extent_dims(space, dims, NULL);
  H5Sclose(space);
  int same = got_ndim == ndim;
  for (int i = 0; same && i < ndim; i++) same = dims[i] == want[i];
  if (!same) {
    char got[128], expected[128];
    format_dims(got, sizeof(got), dims, got_ndim < 0 ? 0 : got_ndim);
    format_dims(expected, sizeof(expected), want, ndim);
    GORP_ERR(GORP_EINPUT, "%s: dataset %s has shape %s, expected %s", path, where, got, expected);
  }
  if (H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) < 0)
    GORP_ERR(GORP_EINPUT, "%s: cannot read dataset %s", path, where);
  char obj[800];
  snprintf(obj, sizeof(obj), "dataset %s", where);
  uint32_t stored;
  GORP_CALL(h5io_read_num_attr(d, obj, "crc32", 0, H5T_NATIVE_UINT32, &stored, path));
  const uint32_t crc = crc32_bytes(x, bytes);
  if (crc != stored)
    GORP_ERR(GORP_EINPUT,
             "%s: dataset %s is damaged: crc32 of its data is 0x%08x, the stored crc32 "
             "attribute says 0x%08x",
             path, where, crc, stored);
  GORP_H5(H5Oclose(d));
  return GORP_OK;
}

int h5io_read_floats(hid_t loc, const char *name, int ndim, const hsize_t *dims, float *x,
                     const char *path) {
  return read_data(loc, name, ndim, dims, H5T_NATIVE_FLOAT, x, count(ndim, dims) * sizeof(float),
                   path);
}

int h5io_read_doubles(hid_t loc, const char *name, int ndim, const hsize_t *dims, double *x,
                      const char *path) {
  return read_data(loc, name, ndim, dims, H5T_NATIVE_DOUBLE, x, count(ndim, dims) * sizeof(double),
                   path);
}
