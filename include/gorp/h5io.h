/* The HDF5 building blocks of gorp's files (model files, checkpoints): checked file creation and
 * opening, scalar and string attributes, and float32/float64 datasets that carry a `crc32`
 * attribute of their logical little-endian bytes and are verified (shape, class, checksum) when
 * read. Every failure names the file and the dataset or attribute.
 * Not for: the layout of any one file (modelfile.c, ckpt.c) or collective parallel I/O. */
#ifndef GORP_H5IO_H
#define GORP_H5IO_H

#include <hdf5.h>

/* Creates path (truncating) with the "strong" close degree: closing the file on an error path
 * also closes whatever objects the failing code left open. */
int h5io_create(const char *path, hid_t *file);
/* Opens an existing HDF5 file read-only; what ("model file", "checkpoint") names it in errors. */
int h5io_open_read(const char *path, const char *what, hid_t *file);

int h5io_write_attr(hid_t obj, const char *key, hid_t file_type, hid_t mem_type, const void *v,
                    const char *path);
/* A variable-length UTF-8 string attribute (h5py reads it as str; no 64 KiB limit). */
int h5io_write_str_attr(hid_t obj, const char *key, const char *s, const char *path);
/* A numeric scalar attribute; float_ok also accepts floating-point values (read as mem_type). */
int h5io_read_num_attr(hid_t obj, const char *obj_name, const char *key, int float_ok,
                       hid_t mem_type, void *out, const char *path);
/* A string attribute into a malloc'd copy. */
int h5io_read_str_attr(hid_t obj, const char *obj_name, const char *key, char **out,
                       const char *path);

/* A dataset name under loc (intermediate groups are created) with a crc32 attribute. */
int h5io_write_floats(hid_t loc, const char *name, int ndim, const hsize_t *dims, const float *x,
                      const char *path);
int h5io_write_doubles(hid_t loc, const char *name, int ndim, const hsize_t *dims, const double *x,
                       const char *path);
/* Reads a dataset of exactly the given shape, verifying its class and crc32; messages name
 * <loc's path>/<name>. */
int h5io_read_floats(hid_t loc, const char *name, int ndim, const hsize_t *dims, float *x,
                     const char *path);
int h5io_read_doubles(hid_t loc, const char *name, int ndim, const hsize_t *dims, double *x,
                      const char *path);

#endif
