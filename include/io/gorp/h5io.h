/* The HDF5 building blocks of gorp's files (model files, checkpoints): checked file creation and
 * opening, scalar and string attributes, and float32/float64 datasets that carry a `crc32`
 * attribute of their logical little-endian bytes and are verified (shape, class, checksum) when
 * read. Every failure names the file and the dataset or attribute; reading, a failing HDF5 call is
 * damage (GORP_EINPUT), never GORP_ELIB. Files are written so that HDF5 checksums every piece of
 * their metadata (docs/CHECKPOINT.md, "Damaged files"): the HDF5 1.8 format, fixed-length
 * strings, links and attributes kept in their object headers (h5io_create_group).
 *
 * Parallel files (the `_par` functions and h5io_write_part/h5io_read_part with a dist of more than
 * one rank): every rank of the world opens the file through the MPI-IO driver and makes every
 * metadata call (group, dataset and attribute creation) with identical arguments; each dataset is
 * the logical tensor, and each rank transfers its part of it (h5io_block) in one collective call.
 * A block that every rank holds (replicated) is written by world rank 0 and a shard by the ranks
 * of data-parallel group 0, so that each element is written once; the others take part with an
 * empty selection. The crc32 attribute is combined from the written blocks' parts (crc.h) with
 * one all-reduce, without gathering the data, and every rank stores the same value. Reading, each
 * rank verifies what it read: a dataset without shards alone, a sharded one together with its TP
 * group. Every collective step is entered only once all ranks agree that the previous one
 * succeeded (h5io_agree), so a failure on one rank makes every rank return the same code, never a
 * hang. With a NULL dist (or one rank) everything is serial HDF5 and no MPI call is made.
 * Not for: the layout of any one file (modelfile.c, ckpt.c). */
#ifndef GORP_H5IO_H
#define GORP_H5IO_H

#include "gorp/state.h"

#include <hdf5.h>
#include <stdint.h>

struct dist;

/* Creates path (truncating) with the "strong" close degree: closing the file on an error path
 * also closes whatever objects the failing code left open. */
int h5io_create(const char *path, hid_t *file);
/* Opens an existing HDF5 file read-only; what ("model file", "checkpoint") names it in errors. */
int h5io_open_read(const char *path, const char *what, hid_t *file);
/* The same, collectively by every rank of d through MPI-IO (d NULL or one rank: as above). */
int h5io_create_par(const char *path, const struct dist *d, hid_t *file);
int h5io_open_read_par(const char *path, const char *what, const struct dist *d, hid_t *file);
/* Ends writing tmp: allocates its space (a full disk fails here, not in HDF5's close, which HDF5
 * 1.10 does not survive), closes file (collectively), then, if every rank succeeded (rc 0 on all),
 * world rank 0 publishes tmp as path (fs_publish) while the others wait; otherwise tmp is removed
 * and path left as it was (ranks sharing a lost file leave it open: the job ends in MPI_Abort).
 * Returns the code every rank agrees on. */
int h5io_close_publish(hid_t file, int rc, const char *tmp, const char *path, const struct dist *d);
/* The worst of rc over every rank of d (a collective call; d NULL or one rank: rc). A rank whose
 * own rc is 0 says that another rank failed at `what` (its message names the cause). */
int h5io_agree(const struct dist *d, int rc, const char *path, const char *what);

/* Creates group name under loc (and its missing parents), its links and attributes kept in its
 * checksummed object header however many there are; every group of a gorp file is made so. */
int h5io_create_group(hid_t loc, const char *name, const char *path, hid_t *grp);
/* Opens group name under loc; a missing or unreadable one is bad input naming the file (a damaged
 * file falls back like any other read failure). */
int h5io_open_group(hid_t loc, const char *name, const char *path, hid_t *grp);

int h5io_write_attr(hid_t obj, const char *key, hid_t file_type, hid_t mem_type, const void *v,
                    const char *path);
/* The same with a 1-D array of n values. */
int h5io_write_array_attr(hid_t obj, const char *key, hid_t file_type, hid_t mem_type,
                          const void *v, int n, const char *path);
/* A fixed-length UTF-8 string attribute (inside the checksummed object header: a variable-length
 * one lives in the global heap, which has no checksum; h5py reads it as bytes). */
int h5io_write_str_attr(hid_t obj, const char *key, const char *s, const char *path);
/* A numeric scalar attribute; float_ok also accepts floating-point values (read as mem_type). */
int h5io_read_num_attr(hid_t obj, const char *obj_name, const char *key, int float_ok,
                       hid_t mem_type, void *out, const char *path);
/* The same for 1..max numbers (a scalar or a 1-D array), *n of them into out. */
int h5io_read_nums_attr(hid_t obj, const char *obj_name, const char *key, int float_ok,
                        hid_t mem_type, void *out, int max, int *n, const char *path);
/* A string attribute into a malloc'd copy. */
int h5io_read_str_attr(hid_t obj, const char *obj_name, const char *key, char **out,
                       const char *path);

/* One rank's block of a logical row-major matrix (state.h): a 2-D dataset of shape (rows, cols)
 * has one block at base 0; a 1-D dataset that concatenates matrices (an optimizer's flattened
 * moments) has one block per matrix. */
typedef state_block h5io_block;

/* A float32, float64 or bfloat16 dataset as one rank sees it. HDF5 has no bfloat16 type (h5py
 * neither): a bf16 dataset is stored as uint16 (the bf16 bits, bf16.h) with the string attribute
 * dtype = "bfloat16"; numpy widens it exactly with (x.astype(uint32) << 16).view(float32). */
#define H5IO_BF16 "bfloat16"
typedef struct h5io_data {
  const char *name; /* under loc; intermediate groups are created when writing */
  hid_t mem_type;   /* H5T_NATIVE_FLOAT, H5T_NATIVE_DOUBLE or H5T_NATIVE_UINT16 (bf16), stored
                     * little-endian */
  int ndim;
  const hsize_t *dims;      /* the logical shape */
  const h5io_block *blocks; /* this rank's part, in increasing position in the dataset and in
                               memory, not overlapping */
  int n_blocks;
} h5io_data;

/* *bf16 = 1 when dataset name under loc is a bfloat16 dataset (above), 0 for any other; a dtype
 * attribute gorp does not know is an error naming it. */
int h5io_dataset_bf16(hid_t loc, const char *name, int *bf16, const char *path);

/* A matrix held whole by every rank: the block of a dataset of shape dims (ndim 1 or 2). */
h5io_block h5io_whole(int ndim, const hsize_t *dims);

/* Writes dataset s under loc from x (this rank's blocks) with its crc32 attribute; collective over
 * d's world (see above). */
int h5io_write_part(hid_t loc, const h5io_data *s, const void *x, const struct dist *d,
                    const char *path);
/* Reads this rank's blocks of dataset s into x after checking its class and shape, and verifies
 * the crc32 of the logical tensor; collective over d's world. Messages name <loc's path>/<name>. */
int h5io_read_part(hid_t loc, const h5io_data *s, void *x, const struct dist *d, const char *path);

/* Serial whole datasets (results files, gorp inspect): */
int h5io_write_floats(hid_t loc, const char *name, int ndim, const hsize_t *dims, const float *x,
                      const char *path);
int h5io_write_doubles(hid_t loc, const char *name, int ndim, const hsize_t *dims, const double *x,
                       const char *path);
/* Reads a dataset of exactly the given shape (any rank), verifying its class and crc32. */
int h5io_read_floats(hid_t loc, const char *name, int ndim, const hsize_t *dims, float *x,
                     const char *path);
int h5io_read_doubles(hid_t loc, const char *name, int ndim, const hsize_t *dims, double *x,
                      const char *path);

#endif
