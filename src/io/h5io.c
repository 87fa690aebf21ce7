/* HDF5 building blocks with checksums, serial or collective (see h5io.h). */
#define _GNU_SOURCE /* memfd_create */
#include "gorp/h5io.h"

#include "gorp/crc.h"
#include "gorp/dist.h"
#include "gorp/err.h"
#include "gorp/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* More than one rank shares the file: MPI-IO and collective calls. */
static int parallel(const dist *d) {
  return d && d->size > 1;
}

int h5io_agree(const dist *d, int rc, const char *path, const char *what) {
  if (!parallel(d)) return rc;
  int worst = rc;
  GORP_MPI(MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  if (worst && !rc)
    GORP_ERR(worst, "%s: %s failed on another rank (its message names the cause)", path, what);
  return worst;
}

/* A file access list whose H5Fclose also closes every object still open in the file; through
 * MPI-IO over the world when d has more than one rank. The file format is HDF5 1.8's (superblock
 * 2, object headers 2, readable by HDF5 >= 1.8 and h5py): every piece of metadata carries a
 * checksum that HDF5 verifies when it reads it, so a damaged byte is an error, never garbage fed
 * to HDF5's parsers (gorp's own crc32 covers the data). No sieve buffer: raw data goes to the
 * file inside H5Dwrite, so a full disk fails the write, not a later H5Dclose (which HDF5 1.10
 * does not survive). */
static hid_t access_list(const dist *d) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl >= 0 &&
      (H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0 || H5Pset_sieve_buf_size(fapl, 0) < 0 ||
       H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST) < 0 ||
       (parallel(d) && H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL) < 0))) {
    H5Pclose(fapl);
    return -1;
  }
  return fapl;
}

/* Links and attributes stay in their object's header, whatever their number (up to 65535):
 * object headers carry checksums, while the dense storage that HDF5 switches to after 8 (a
 * fractal heap of link names and attributes) does not, and HDF5 1.10 crashes iterating over a
 * damaged one. Intermediate groups inherit this from their parent. */
static herr_t set_compact(hid_t gcpl) {
  return H5Pset_link_phase_change(gcpl, 65535, 65534) < 0 ||
                 H5Pset_attr_phase_change(gcpl, 65535, 65534) < 0
             ? -1
             : 0;
}

/* A creation list for a file (its root group) or a group with compact links and attributes. */
static hid_t compact_list(hid_t cls) {
  hid_t list = H5Pcreate(cls);
  if (list >= 0 && set_compact(list) < 0) {
    H5Pclose(list);
    return -1;
  }
  return list;
}

int h5io_create_group(hid_t loc, const char *name, const char *path, hid_t *grp) {
  const hid_t lcpl = H5Pcreate(H5P_LINK_CREATE), gcpl = compact_list(H5P_GROUP_CREATE);
  *grp = lcpl < 0 || gcpl < 0 || H5Pset_create_intermediate_group(lcpl, 1) < 0
             ? -1
             : H5Gcreate2(loc, name, lcpl, gcpl, H5P_DEFAULT);
  if (lcpl >= 0) H5Pclose(lcpl);
  if (gcpl >= 0) H5Pclose(gcpl);
  if (*grp < 0) GORP_ERR(GORP_EIO, "%s: cannot create group %s", path, name);
  return GORP_OK;
}

/* Opens or creates path with the access list of d; the code every rank agrees on. A file that
 * opened on this rank while another failed stays open: closing it is collective. */
static int open_agreed(const char *path, int create, const dist *d, hid_t *file) {
  const hid_t fapl = access_list(d), fcpl = create ? compact_list(H5P_FILE_CREATE) : H5P_DEFAULT;
  errno = 0; /* what the file system said, if it said anything */
  *file = fapl < 0 || fcpl < 0 ? -1
          : create             ? H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl)
                               : H5Fopen(path, H5F_ACC_RDONLY, fapl);
  if (fapl >= 0) H5Pclose(fapl);
  if (create && fcpl >= 0) H5Pclose(fcpl);
  int rc = GORP_OK;
  if (*file < 0)
    rc = create ? GORP_ERROR(GORP_EIO, "cannot create %s%s%s", path, errno ? ": " : "",
                             errno ? strerror(errno) : "")
                : GORP_ERROR(GORP_EINPUT, "cannot open HDF5 file %s (damaged?)", path);
  return h5io_agree(d, rc, path, create ? "creating the file" : "opening the file");
}

int h5io_create_par(const char *path, const dist *d, hid_t *file) {
  /* a plain open first, on one rank: its errno says why the file cannot be created, in one line */
  int err = 0;
  if (!d || d->rank == 0) {
    const int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) err = errno;
    if (fd >= 0) close(fd);
  }
  if (parallel(d)) GORP_MPI(MPI_Bcast(&err, 1, MPI_INT, 0, MPI_COMM_WORLD));
  if (err) GORP_ERR(GORP_EIO, "cannot create %s: %s", path, strerror(err));
  const int rc = open_agreed(path, 1, d, file);
  if (rc && (!d || d->rank == 0)) unlink(path); /* what the plain open made */
  return rc;
}

int h5io_create(const char *path, hid_t *file) {
  return h5io_create_par(path, NULL, file);
}

int h5io_open_read_par(const char *path, const char *what, const dist *d, hid_t *file) {
  *file = -1;
  int rc = GORP_OK;
  /* stat, not open: opening a FIFO would block until a writer comes, out of reach of SIGTERM */
  struct stat st;
  if (stat(path, &st))
    rc = GORP_ERROR(GORP_EINPUT, "cannot open %s %s: %s", what, path, strerror(errno));
  else if (!S_ISREG(st.st_mode))
    rc = GORP_ERROR(GORP_EINPUT, "%s %s is not a regular file (a directory, FIFO or device)", what,
                    path);
  else if (access(path, R_OK))
    rc = GORP_ERROR(GORP_EINPUT, "cannot open %s %s: %s", what, path, strerror(errno));
  if (!rc && H5Fis_hdf5(path) <= 0) rc = GORP_ERROR(GORP_EINPUT, "%s is not an HDF5 file", path);
  GORP_CALL(h5io_agree(d, rc, path, "opening the file"));
  return open_agreed(path, 0, d, file);
}

int h5io_open_read(const char *path, const char *what, hid_t *file) {
  return h5io_open_read_par(path, what, NULL, file);
}

/* A lost file (its writing failed) of one process: HDF5's descriptor of it is pointed at an
 * anonymous memory file, so that whatever the close still writes (cached metadata) lands in
 * memory and the close succeeds, full disk or not. The file itself is removed afterwards. */
static void divert_close(hid_t file, const char *tmp) {
  void *handle = NULL;
  const int mem = memfd_create("gorp-lost-file", MFD_CLOEXEC);
  if (mem < 0 || H5Fget_vfd_handle(file, H5P_DEFAULT, &handle) < 0 || !handle ||
      dup2(mem, *(int *)handle) < 0)
    GORP_ERROR(GORP_EIO, "%s: cannot divert the closing of a lost file", tmp);
  if (mem >= 0) close(mem);
}

/* How far the file extends once closed, at most. One process: HDF5 knows (its end of
 * allocation). Ranks sharing a file through MPI-IO: HDF5 1.10 does not say, but the raw data is in
 * the file already (collective writes), and the close adds at most the cached metadata (in holes
 * below the end or past it) and the aggregators' blocks (2 KiB each by default; 64 KiB is ample).
 */
static int closed_size(hid_t file, const char *tmp, const dist *d, hsize_t *size) {
  if (!parallel(d)) {
    if (H5Fget_filesize(file, size) < 0) GORP_ERR(GORP_EIO, "%s: cannot get the file's size", tmp);
    return GORP_OK;
  }
  size_t max_size, min_clean, cached;
  int entries;
  struct stat st;
  if (H5Fget_mdc_size(file, &max_size, &min_clean, &cached, &entries) < 0 || stat(tmp, &st))
    GORP_ERR(GORP_EIO, "%s: cannot get the file's size", tmp);
  *size = (hsize_t)st.st_size + cached + 65536;
  return GORP_OK;
}

/* HDF5 writes its cached metadata when the file closes, and HDF5 1.10 does not survive a close
 * that fails: one process's cache stays half-destroyed and the library crashes when it shuts down
 * (in MPI_Finalize); the ranks of a collective close wait for each other forever. So the close
 * comes only where it cannot fail for space: the file's extent is allocated first (by world rank
 * 0 for a shared file), and a full disk is reported here. Returns the code every rank agrees on. */
static int prepare_close(hid_t file, int rc, const char *tmp, const dist *d) {
  hsize_t size = 0;
  if (!rc && (!d || d->rank == 0)) rc = closed_size(file, tmp, d, &size);
  if (!rc && (!d || d->rank == 0)) {
    const int fd = open(tmp, O_WRONLY);
    const int err = fd < 0 ? errno : posix_fallocate(fd, 0, (off_t)size);
    if (fd >= 0) close(fd);
    if (err) rc = GORP_ERROR(GORP_EIO, "cannot write %s: %s", tmp, strerror(err));
  }
  return h5io_agree(d, rc, tmp, "allocating the file's space");
}

int h5io_close_publish(hid_t file, int rc, const char *tmp, const char *path, const dist *d) {
  rc = prepare_close(file, rc, tmp, d);
  if (rc && parallel(d)) {
    /* left open: the job ends in MPI_Abort (main), before HDF5 shuts down */
    if (d->rank == 0) unlink(tmp);
    return rc;
  }
  if (rc) divert_close(file, tmp); /* lost, one process: its close writes into memory */
  if (H5Fclose(file) < 0 && !rc) rc = GORP_ERROR(GORP_EIO, "%s: closing the file failed", tmp);
  rc = h5io_agree(d, rc, tmp, "closing the file");
  if (!d || d->rank == 0) {
    if (!rc) rc = fs_publish(tmp, path);
    if (rc) unlink(tmp); /* no half-written file stays behind; path was not touched */
  }
  return h5io_agree(d, rc, path, "publishing the file");
}

/* Attribute key of obj in space (closed here). */
static int write_attr_in(hid_t obj, const char *key, hid_t file_type, hid_t mem_type, const void *v,
                         hid_t space, const char *path) {
  if (space < 0) GORP_ERR(GORP_EIO, "%s: cannot create the dataspace of attribute %s", path, key);
  const hid_t attr = H5Acreate2(obj, key, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
  H5Sclose(space);
  if (attr < 0 || H5Awrite(attr, mem_type, v) < 0) {
    if (attr >= 0) H5Aclose(attr);
    GORP_ERR(GORP_EIO, "%s: cannot write attribute %s", path, key);
  }
  GORP_H5(H5Aclose(attr));
  return GORP_OK;
}

int h5io_write_attr(hid_t obj, const char *key, hid_t file_type, hid_t mem_type, const void *v,
                    const char *path) {
  return write_attr_in(obj, key, file_type, mem_type, v, H5Screate(H5S_SCALAR), path);
}

int h5io_write_array_attr(hid_t obj, const char *key, hid_t file_type, hid_t mem_type,
                          const void *v, int n, const char *path) {
  const hsize_t dims[1] = {(hsize_t)n};
  return write_attr_in(obj, key, file_type, mem_type, v, H5Screate_simple(1, dims, NULL), path);
}

/* A UTF-8 string type: fixed-length (size bytes with the terminating NUL) or variable-length. */
static hid_t utf8_type(size_t size) {
  hid_t type = H5Tcopy(H5T_C_S1);
  if (type >= 0 && (H5Tset_size(type, size) < 0 || H5Tset_cset(type, H5T_CSET_UTF8) < 0 ||
                    (size != H5T_VARIABLE && H5Tset_strpad(type, H5T_STR_NULLTERM) < 0))) {
    H5Tclose(type);
    return -1;
  }
  return type;
}

int h5io_write_str_attr(hid_t obj, const char *key, const char *s, const char *path) {
  hid_t type;
  GORP_H5(type = utf8_type(strlen(s) + 1));
  const int rc = h5io_write_attr(obj, key, type, type, s, path);
  H5Tclose(type);
  return rc;
}

/* A failing HDF5 call while reading a file is the file's fault (damaged or foreign), reported as
 * bad input naming the file, so that a checkpoint's reader falls back to an earlier one. */
#define H5IO_READ(call, path, what, ...)                                                           \
  do {                                                                                             \
    if ((long long)(call) < 0)                                                                     \
      GORP_ERR(GORP_EINPUT, "%s: cannot read " what " (damaged file?)", path, __VA_ARGS__);        \
  } while (0)

int h5io_open_group(hid_t loc, const char *name, const char *path, hid_t *grp) {
  *grp = -1;
  H5IO_READ(*grp = H5Gopen2(loc, name, H5P_DEFAULT), path, "group %s", name);
  return GORP_OK;
}

/* Opens attribute key of obj; a missing one is an error naming it. */
static int open_attr(hid_t obj, const char *obj_name, const char *key, const char *path,
                     hid_t *attr) {
  const htri_t exists = H5Aexists(obj, key);
  H5IO_READ(exists, path, "the attributes of %s", obj_name);
  if (!exists) GORP_ERR(GORP_EINPUT, "%s: %s has no attribute %s", path, obj_name, key);
  H5IO_READ(*attr = H5Aopen(obj, key, H5P_DEFAULT), path, "attribute %s of %s", key, obj_name);
  return GORP_OK;
}

int h5io_read_nums_attr(hid_t obj, const char *obj_name, const char *key, int float_ok,
                        hid_t mem_type, void *out, int max, int *n, const char *path) {
  hid_t attr, type = -1, space = -1;
  GORP_CALL(open_attr(obj, obj_name, key, path, &attr));
  const int ok = (type = H5Aget_type(attr)) >= 0 && (space = H5Aget_space(attr)) >= 0;
  const H5T_class_t cls = ok ? H5Tget_class(type) : H5T_NO_CLASS;
  const hssize_t npoints = ok ? H5Sget_simple_extent_npoints(space) : -1;
  const int ndims = ok ? H5Sget_simple_extent_ndims(space) : -1;
  if (type >= 0) H5Tclose(type);
  if (space >= 0) H5Sclose(space);
  int rc = GORP_OK;
  const char *what = float_ok ? "number" : "integer";
  if (npoints < 1 || npoints > max || ndims > 1 ||
      !(cls == H5T_INTEGER || (float_ok && cls == H5T_FLOAT))) {
    if (max == 1)
      rc = GORP_ERROR(GORP_EINPUT, "%s: attribute %s of %s must be a single %s", path, key,
                      obj_name, what);
    else
      rc = GORP_ERROR(GORP_EINPUT, "%s: attribute %s of %s must hold 1 to %d %ss (has %lld)", path,
                      key, obj_name, max, what, (long long)npoints);
  } else if (H5Aread(attr, mem_type, out) < 0) {
    rc = GORP_ERROR(GORP_EINPUT, "%s: cannot read attribute %s of %s (damaged file?)", path, key,
                    obj_name);
  }
  H5Aclose(attr);
  if (!rc) *n = (int)npoints;
  return rc;
}

int h5io_read_num_attr(hid_t obj, const char *obj_name, const char *key, int float_ok,
                       hid_t mem_type, void *out, const char *path) {
  int n;
  return h5io_read_nums_attr(obj, obj_name, key, float_ok, mem_type, out, 1, &n, path);
}

/* The longest string attribute read: far above any config text, far below what a corrupt size
 * in an unchecked (pre-checksum) file could make us allocate. */
enum { H5IO_STR_MAX = 1 << 24 };

int h5io_read_str_attr(hid_t obj, const char *obj_name, const char *key, char **out,
                       const char *path) {
  *out = NULL;
  hid_t attr, type, mem = -1;
  GORP_CALL(open_attr(obj, obj_name, key, path, &attr));
  type = H5Aget_type(attr);
  const int is_str = type >= 0 && H5Tget_class(type) == H5T_STRING;
  /* files of earlier gorp versions hold variable-length strings */
  const int vlen = is_str && H5Tis_variable_str(type) > 0;
  const size_t size = is_str && !vlen ? H5Tget_size(type) : 0;
  if (type >= 0) H5Tclose(type);
  int rc = GORP_OK;
  if (!is_str || (!vlen && (size == 0 || size > H5IO_STR_MAX)))
    rc = GORP_ERROR(GORP_EINPUT, "%s: attribute %s of %s is not a string%s", path, key, obj_name,
                    size > H5IO_STR_MAX ? " of a sane size (damaged file?)" : "");
  else if ((mem = utf8_type(vlen ? H5T_VARIABLE : size)) < 0)
    rc = GORP_ERROR(GORP_ELIB, "HDF5 call failed: H5Tcopy");
  char *fixed = NULL, *var = NULL;
  if (!rc && !vlen && !(fixed = calloc(size + 1, 1)))
    rc = GORP_ERROR(GORP_EMEM, "out of memory reading %s", path);
  if (!rc && (H5Aread(attr, mem, vlen ? (void *)&var : fixed) < 0 || (vlen && !var)))
    rc = GORP_ERROR(GORP_EINPUT, "%s: cannot read attribute %s of %s (damaged file?)", path, key,
                    obj_name);
  if (mem >= 0) H5Tclose(mem);
  H5Aclose(attr);
  if (!rc && vlen) {
    fixed = strdup(var);
    if (!fixed) rc = GORP_ERROR(GORP_EMEM, "out of memory reading %s", path);
  }
  if (var) H5free_memory(var);
  if (rc)
    free(fixed);
  else
    *out = fixed;
  return rc;
}

/* "<loc path>/<name>" for messages ("/model/x"; at the root "/x"). */
static void full_name(char *buf, size_t size, hid_t loc, const char *name) {
  char grp[512] = "";
  if (name[0] != '/' && H5Iget_name(loc, grp, sizeof(grp)) < 0) grp[0] = '\0';
  snprintf(buf, size, "%s/%s", strcmp(grp, "/") ? grp : "", name + (name[0] == '/'));
}

h5io_block h5io_whole(int ndim, const hsize_t *dims) {
  /* a 1-D dataset is a column; more axes fold into the rows */
  const uint64_t cols = ndim >= 2 ? dims[ndim - 1] : 1;
  uint64_t rows = 1;
  for (int i = 0; i < ndim - (ndim >= 2); i++) rows *= dims[i];
  return (h5io_block){.rows = rows, .cols = cols, .nr = rows, .nc = cols};
}

static uint64_t block_count(const h5io_block *b) {
  return b->nr * b->nc;
}

static uint64_t points(const h5io_data *s) {
  uint64_t n = 1;
  for (int i = 0; i < s->ndim; i++) n *= s->dims[i];
  return n;
}

/* The blocks lie inside the dataset in increasing order, in memory too (HDF5 pairs the selected
 * elements of both in that order); a 2-D dataset has one block of its shape, more axes one whole
 * block; one process holds every block whole. */
static int check_blocks(const h5io_data *s, const dist *d, const char *where, const char *path) {
  uint64_t end = 0, mem_end = 0;
  for (int i = 0; i < s->n_blocks; i++) {
    const h5io_block *b = &s->blocks[i];
    const int whole = b->r0 == 0 && b->nr == b->rows && b->c0 == 0 && b->nc == b->cols;
    int ok = b->r0 + b->nr <= b->rows && b->c0 + b->nc <= b->cols && b->base >= end &&
             b->mem >= mem_end && (parallel(d) || whole);
    if (s->ndim == 1)
      ok = ok && b->base + b->rows * b->cols <= s->dims[0];
    else if (s->ndim == 2)
      ok = ok && s->n_blocks == 1 && b->base == 0 && b->rows == s->dims[0] && b->cols == s->dims[1];
    else
      ok = ok && s->n_blocks == 1 && whole && b->rows * b->cols == points(s);
    if (!ok)
      GORP_ERR(GORP_ELIB,
               "%s: dataset %s: this rank's block %d (rows %llu+%llu of %llu, columns %llu+%llu "
               "of %llu at %llu) does not fit the dataset (a gorp bug)",
               path, where, i, (unsigned long long)b->r0, (unsigned long long)b->nr,
               (unsigned long long)b->rows, (unsigned long long)b->c0, (unsigned long long)b->nc,
               (unsigned long long)b->cols, (unsigned long long)b->base);
    end = b->base + b->rows * b->cols;
    mem_end = b->mem + block_count(b);
  }
  return GORP_OK;
}

/* Which ranks' copies count: the checksum is combined over the ranks that hold, between them,
 * each element of the dataset exactly once. */
typedef enum {
  COUNT_ALL,   /* one process, or a dataset without shards read by every rank: all of it */
  COUNT_TP,    /* reading shards: the TP group's blocks, a whole matrix on its first rank */
  COUNT_WORLD, /* writing: data-parallel group 0's shards, whole matrices on world rank 0 */
} count_rule;

static int counted(const h5io_block *b, const dist *d, count_rule rule) {
  switch (rule) {
  case COUNT_TP:
    return b->split || d->tp_rank == 0;
  case COUNT_WORLD:
    return b->split ? d->dp_rank == 0 : d->rank == 0;
  default:
    return 1;
  }
}

/* Adds block b to the selection of a file space: a 2-D block, a strided run of rows of a matrix
 * inside a 1-D dataset, or (more axes) the whole space. */
static herr_t select_block(hid_t space, int ndim, const h5io_block *b) {
  if (ndim == 2) {
    const hsize_t start[2] = {b->r0, b->c0}, count[2] = {b->nr, b->nc};
    return H5Sselect_hyperslab(space, H5S_SELECT_OR, start, NULL, count, NULL);
  }
  if (ndim != 1) return H5Sselect_all(space);
  if (b->nc == b->cols) { /* whole rows: one contiguous run */
    const hsize_t start = b->base + b->r0 * b->cols, count = b->nr * b->cols;
    return H5Sselect_hyperslab(space, H5S_SELECT_OR, &start, NULL, &count, NULL);
  }
  const hsize_t start = b->base + b->r0 * b->cols + b->c0, stride = b->cols, count = b->nr,
                block = b->nc;
  return H5Sselect_hyperslab(space, H5S_SELECT_OR, &start, &stride, &count, &block);
}

/* Selects the blocks that the rule counts (COUNT_ALL: every block) in the file space and in a new
 * 1-D memory space *mem over the rank's buffer. */
static int select_blocks(hid_t space, hid_t *mem, const h5io_data *s, const dist *d,
                         count_rule rule) {
  hsize_t n = 1; /* a buffer that holds no block still gets a (non-empty) space */
  for (int i = 0; i < s->n_blocks; i++)
    if (s->blocks[i].mem + block_count(&s->blocks[i]) > n)
      n = s->blocks[i].mem + block_count(&s->blocks[i]);
  *mem = H5Screate_simple(1, &n, NULL);
  if (*mem < 0 || H5Sselect_none(*mem) < 0 || H5Sselect_none(space) < 0) return -1;
  for (int i = 0; i < s->n_blocks; i++) {
    const h5io_block *b = &s->blocks[i];
    const hsize_t at = b->mem, count = block_count(b);
    if (count && counted(b, d, rule) &&
        (select_block(space, s->ndim, b) < 0 ||
         H5Sselect_hyperslab(*mem, H5S_SELECT_OR, &at, NULL, &count, NULL) < 0))
      return -1;
  }
  return 0;
}

/* The XOR of the crc32 parts (crc.h) of the blocks that the rule counts, read from x. */
static uint32_t counted_parts(const h5io_data *s, const void *x, size_t esize, const dist *d,
                              count_rule rule) {
  const uint64_t total = points(s) * esize;
  uint32_t parts = 0;
  for (int i = 0; i < s->n_blocks; i++) {
    const h5io_block *b = &s->blocks[i];
    const char *at = (const char *)x + b->mem * esize;
    const uint64_t first = b->base + b->r0 * b->cols + b->c0;
    if (counted(b, d, rule) && block_count(b)) {
      if (b->nc == b->cols) /* whole rows are one run of the logical bytes */
        parts ^= crc32_part(at, block_count(b) * esize, first * esize, total);
      else
        for (uint64_t r = 0; r < b->nr; r++)
          parts ^= crc32_part(at + r * b->nc * esize, b->nc * esize, (first + r * b->cols) * esize,
                              total);
    }
  }
  return parts;
}

/* The crc32 of the logical tensor from the parts of the ranks that the rule counts. */
static int combine_crc(uint32_t *crc, uint32_t parts, const h5io_data *s, size_t esize,
                       const dist *d, count_rule rule) {
  uint32_t all = parts;
  if (rule != COUNT_ALL)
    GORP_MPI(MPI_Allreduce(&parts, &all, 1, MPI_UINT32_T, MPI_BXOR,
                           rule == COUNT_TP ? d->tp : MPI_COMM_WORLD));
  *crc = crc32_from_parts(all, points(s) * esize);
  return GORP_OK;
}

/* A collective transfer among the ranks of the file, an independent one on one process. */
static hid_t transfer_list(const dist *d) {
  if (!parallel(d)) return H5Pcopy(H5P_DATASET_XFER_DEFAULT);
  const hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
  if (dxpl >= 0 && H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE) < 0) {
    H5Pclose(dxpl);
    return -1;
  }
  return dxpl;
}

/* Closes the identifiers that are open (>= 0). */
static void close_all(hid_t dset, hid_t space, hid_t mem, hid_t dxpl) {
  if (dset >= 0) H5Dclose(dset);
  if (space >= 0) H5Sclose(space);
  if (mem >= 0) H5Sclose(mem);
  if (dxpl >= 0) H5Pclose(dxpl);
}

/* The new dataset (intermediate groups created; no fill values: every element is written). */
static hid_t create_dataset(hid_t loc, const h5io_data *s, hid_t space) {
  const hid_t type = s->mem_type == H5T_NATIVE_DOUBLE   ? H5T_IEEE_F64LE
                     : s->mem_type == H5T_NATIVE_UINT16 ? H5T_STD_U16LE
                                                        : H5T_IEEE_F32LE;
  const hid_t lcpl = H5Pcreate(H5P_LINK_CREATE), dcpl = H5Pcreate(H5P_DATASET_CREATE);
  hid_t dset = -1;
  if (lcpl >= 0 && dcpl >= 0 && H5Pset_create_intermediate_group(lcpl, 1) >= 0 &&
      H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) >= 0)
    dset = H5Dcreate2(loc, s->name, type, space, lcpl, dcpl, H5P_DEFAULT);
  if (lcpl >= 0) H5Pclose(lcpl);
  if (dcpl >= 0) H5Pclose(dcpl);
  return dset;
}

static void format_dims(char *buf, size_t size, const hsize_t *dims, int ndim) {
  size_t used = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < ndim && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%llu", i ? ", " : "",
                             (unsigned long long)dims[i]);
  if (used < size) snprintf(buf + used, size - used, "]");
}

/* Opens dataset s after checking that it exists, is floating-point and has s's shape. */
static int open_checked(hid_t loc, const h5io_data *s, const char *where, const char *path,
                        hid_t *dset) {
  const htri_t exists = H5Lexists(loc, s->name, H5P_DEFAULT);
  if (exists <= 0) /* < 0: a group on its path is missing too, or damaged */
    GORP_ERR(GORP_EINPUT, "%s: dataset %s is missing", path, where);
  H5IO_READ(*dset = H5Oopen(loc, s->name, H5P_DEFAULT), path, "dataset %s", where);
  if (H5Iget_type(*dset) != H5I_DATASET)
    GORP_ERR(GORP_EINPUT, "%s: %s is not a dataset", path, where);
  int bf16;
  GORP_CALL(h5io_dataset_bf16(loc, s->name, &bf16, path));
  if (bf16 != (s->mem_type == H5T_NATIVE_UINT16))
    GORP_ERR(GORP_EINPUT, "%s: dataset %s holds %s values, %s expected", path, where,
             bf16 ? "bfloat16" : "other", s->mem_type == H5T_NATIVE_UINT16 ? "bfloat16" : "float");
  hid_t type, space;
  H5IO_READ(type = H5Dget_type(*dset), path, "the type of dataset %s", where);
  const H5T_class_t cls = H5Tget_class(type);
  H5Tclose(type);
  if (!bf16 && cls != H5T_FLOAT)
    GORP_ERR(GORP_EINPUT, "%s: dataset %s is not floating-point (%s expected)", path, where,
             s->mem_type == H5T_NATIVE_FLOAT ? "float32" : "float64");
  H5IO_READ(space = H5Dget_space(*dset), path, "the shape of dataset %s", where);
  hsize_t dims[H5S_MAX_RANK];
  const int got_ndim = H5Sget_simple_extent_dims(space, dims, NULL);
  H5Sclose(space);
  int same = got_ndim == s->ndim;
  for (int i = 0; same && i < s->ndim; i++) same = dims[i] == s->dims[i];
  if (!same) {
    char got[128], expected[128];
    format_dims(got, sizeof(got), dims, got_ndim < 0 ? 0 : got_ndim);
    format_dims(expected, sizeof(expected), s->dims, s->ndim);
    GORP_ERR(GORP_EINPUT, "%s: dataset %s has shape %s, expected %s", path, where, got, expected);
  }
  return GORP_OK;
}

int h5io_dataset_bf16(hid_t loc, const char *name, int *bf16, const char *path) {
  *bf16 = 0;
  char where[768];
  full_name(where, sizeof(where), loc, name);
  if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
    GORP_ERR(GORP_EINPUT, "%s: dataset %s is missing", path, where);
  hid_t dset, type;
  H5IO_READ(dset = H5Dopen2(loc, name, H5P_DEFAULT), path, "dataset %s", where);
  const htri_t tagged = H5Aexists(dset, "dtype");
  type = H5Dget_type(dset);
  const int u16 = type >= 0 && H5Tget_class(type) == H5T_INTEGER && H5Tget_size(type) == 2 &&
                  H5Tget_sign(type) == H5T_SGN_NONE;
  if (type >= 0) H5Tclose(type);
  char *dtype = NULL;
  int rc = tagged < 0 || type < 0
               ? GORP_ERROR(GORP_EINPUT, "%s: cannot read the type of dataset %s", path, where)
           : tagged ? h5io_read_str_attr(dset, where, "dtype", &dtype, path)
                    : GORP_OK;
  H5Dclose(dset);
  if (!rc && dtype && (strcmp(dtype, H5IO_BF16) || !u16))
    rc = GORP_ERROR(GORP_EINPUT,
                    "%s: dataset %s has attribute dtype = \"%s\"; gorp knows only \"%s\" on a "
                    "uint16 dataset",
                    path, where, dtype, H5IO_BF16);
  free(dtype);
  *bf16 = !rc && tagged > 0;
  return rc;
}

/* Compares the stored crc32 attribute with the checksum of the logical tensor. */
static int check_crc(hid_t dset, uint32_t crc, const char *where, const char *path) {
  char obj[800];
  snprintf(obj, sizeof(obj), "dataset %s", where);
  uint32_t stored;
  GORP_CALL(h5io_read_num_attr(dset, obj, "crc32", 0, H5T_NATIVE_UINT32, &stored, path));
  if (crc != stored)
    GORP_ERR(GORP_EINPUT,
             "%s: dataset %s is damaged: crc32 of its data is 0x%08x, the stored crc32 "
             "attribute says 0x%08x",
             path, where, crc, stored);
  return GORP_OK;
}

/* Writes (save) or reads dataset s: the collective skeleton both directions share. Writing, the
 * dataset is created by every rank (a metadata change: only once all agree the blocks fit) and
 * the combined crc32 stored by every rank; reading, the shape is checked first and the crc32 of
 * what was read verified. */
static int transfer(hid_t loc, const h5io_data *s, void *x, const dist *d, const char *path,
                    int save) {
  char where[768], what[800];
  full_name(where, sizeof(where), loc, s->name);
  snprintf(what, sizeof(what), "%s dataset %s", save ? "writing" : "reading", where);
  int sharded = 0;
  for (int i = 0; i < s->n_blocks; i++) sharded |= s->blocks[i].split;
  /* the counted copies: written once over the world; read, each rank checks what it read (alone
   * when it holds the whole dataset, else with its TP group) */
  const count_rule rule = !parallel(d) ? COUNT_ALL
                          : save       ? COUNT_WORLD
                          : sharded    ? COUNT_TP
                                       : COUNT_ALL;
  const size_t esize = H5Tget_size(s->mem_type);
  int rc = check_blocks(s, d, where, path);
  if (save) rc = h5io_agree(d, rc, path, what);
  hid_t dset = -1, space = -1, mem = -1;
  const hid_t dxpl = transfer_list(d);
  if (!rc && save) {
    space = H5Screate_simple(s->ndim, s->dims, NULL);
    dset = space < 0 ? -1 : create_dataset(loc, s, space);
    if (dset < 0) rc = GORP_ERROR(GORP_EIO, "%s: cannot create dataset %s", path, where);
  } else if (!rc) {
    rc = open_checked(loc, s, where, path, &dset);
    if (!rc && (space = H5Dget_space(dset)) < 0)
      rc = GORP_ERROR(GORP_EINPUT, "%s: dataset %s has no dataspace (damaged file?)", path, where);
  }
  /* a write transfers the blocks it owns; a read every block this rank holds */
  if (!rc && (dxpl < 0 || select_blocks(space, &mem, s, d, save ? rule : COUNT_ALL) < 0))
    rc = GORP_ERROR(GORP_ELIB, "%s: cannot select blocks of %s", path, where);
  rc = h5io_agree(d, rc, path, what);
  const int transferring = !rc; /* the same on every rank */
  if (transferring && (save ? H5Dwrite(dset, s->mem_type, mem, space, dxpl, x)
                            : H5Dread(dset, s->mem_type, mem, space, dxpl, x)) < 0)
    rc = save ? GORP_ERROR(GORP_EIO, "%s: cannot write dataset %s", path, where)
              : GORP_ERROR(GORP_EINPUT, "%s: cannot read dataset %s", path, where);
  uint32_t crc = 0;
  if (transferring) { /* even after this rank's transfer failed: no rank left in the all-reduce */
    const int crc_rc = combine_crc(&crc, counted_parts(s, x, esize, d, rule), s, esize, d, rule);
    if (!rc) rc = crc_rc;
  }
  if (save) {
    rc = h5io_agree(d, rc, path, what);
    /* every rank stores the same value: attributes are metadata, written collectively */
    if (!rc) rc = h5io_write_attr(dset, "crc32", H5T_STD_U32LE, H5T_NATIVE_UINT32, &crc, path);
    if (!rc && s->mem_type == H5T_NATIVE_UINT16)
      rc = h5io_write_str_attr(dset, "dtype", H5IO_BF16, path);
  } else if (!rc) {
    rc = check_crc(dset, crc, where, path);
  }
  close_all(dset, space, mem, dxpl);
  return h5io_agree(d, rc, path, what);
}

int h5io_write_part(hid_t loc, const h5io_data *s, const void *x, const dist *d, const char *path) {
  return transfer(loc, s, (void *)x, d, path, 1); /* H5Dwrite only reads x */
}

int h5io_read_part(hid_t loc, const h5io_data *s, void *x, const dist *d, const char *path) {
  return transfer(loc, s, x, d, path, 0);
}

/* The serial whole-dataset calls: one block, no MPI. */
static int write_whole(hid_t loc, const char *name, hid_t mem_type, int ndim, const hsize_t *dims,
                       const void *x, const char *path) {
  const h5io_block b = h5io_whole(ndim, dims);
  const h5io_data s = {name, mem_type, ndim, dims, &b, 1};
  return h5io_write_part(loc, &s, x, NULL, path);
}

static int read_whole(hid_t loc, const char *name, hid_t mem_type, int ndim, const hsize_t *dims,
                      void *x, const char *path) {
  const h5io_block b = h5io_whole(ndim, dims);
  const h5io_data s = {name, mem_type, ndim, dims, &b, 1};
  return h5io_read_part(loc, &s, x, NULL, path);
}

int h5io_write_floats(hid_t loc, const char *name, int ndim, const hsize_t *dims, const float *x,
                      const char *path) {
  return write_whole(loc, name, H5T_NATIVE_FLOAT, ndim, dims, x, path);
}

int h5io_write_doubles(hid_t loc, const char *name, int ndim, const hsize_t *dims, const double *x,
                       const char *path) {
  return write_whole(loc, name, H5T_NATIVE_DOUBLE, ndim, dims, x, path);
}

int h5io_read_floats(hid_t loc, const char *name, int ndim, const hsize_t *dims, float *x,
                     const char *path) {
  return read_whole(loc, name, H5T_NATIVE_FLOAT, ndim, dims, x, path);
}

int h5io_read_doubles(hid_t loc, const char *name, int ndim, const hsize_t *dims, double *x,
                      const char *path) {
  return read_whole(loc, name, H5T_NATIVE_DOUBLE, ndim, dims, x, path);
}
