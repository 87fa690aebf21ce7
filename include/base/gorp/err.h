/* Error handling for all of gorp (PETSc/libCEED style).
 *
 * Every fallible function returns int: 0 on success, a GORP_E* code otherwise. The first failure
 * prints one message naming what was wrong (file, key, tensor) via GORP_ERR; with GORP_DEBUG=1 in
 * the environment the origin and every caller on the way up add "  at file:line in func: call"
 * trace lines (GORP_CALL), which users need not read. main() turns a non-zero
 * code into the process exit status (or MPI_Abort when more than one rank runs).
 * Not for: warnings or progress output (out.h's out_printf prints the job's output once, on world
 * rank 0; a warning is one "gorp: warning: ..." line on stderr). */
#ifndef GORP_ERR_H
#define GORP_ERR_H

enum {
  GORP_OK = 0,
  GORP_EINPUT = 2, /* bad user input: config, data file, model file, command line */
  GORP_EIO = 3,    /* the operating system refused a read/write */
  GORP_EMEM = 4,   /* allocation failed */
  GORP_ELIB = 5,   /* an external library (HDF5, MPI, BLAS, CUDA) reported failure */
  GORP_ENUM = 6,   /* numerical failure: NaN/Inf loss, SVD did not converge */
  GORP_EUSAGE = 64 /* command-line usage (sysexits EX_USAGE) */
};

/* On a function returning a status: a call that ignores it is a build error
 * (-Werror=unused-result), so that no failure is dropped on the way up. */
#define GORP_WUR __attribute__((warn_unused_result))

/* Prints "gorp: error: <message>" (and its origin under GORP_DEBUG); returns code. */
int gorp_error(const char *file, int line, const char *func, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Prints one trace line for a failing call on the way up (under GORP_DEBUG). */
void gorp_trace(const char *file, int line, const char *func, const char *call);

/* The error as an expression (libCEED's CeedError): prints the message with its origin and yields
 * code, for paths that must clean up before returning (rc = GORP_ERROR(...); goto done). */
#define GORP_ERROR(code, ...) gorp_error(__FILE__, __LINE__, __func__, (code), __VA_ARGS__)
/* Returns the error from the current function. */
#define GORP_ERR(code, ...) return GORP_ERROR((code), __VA_ARGS__)
/* Returns the error unless cond holds (libCEED's CeedCheck). */
#define GORP_CHECK(cond, code, ...)                                                                \
  do {                                                                                             \
    if (!(cond)) GORP_ERR((code), __VA_ARGS__);                                                    \
  } while (0)

#define GORP_CALL(call)                                                                            \
  do {                                                                                             \
    int gorp_ierr_ = (call);                                                                       \
    if (gorp_ierr_) {                                                                              \
      gorp_trace(__FILE__, __LINE__, __func__, #call);                                             \
      return gorp_ierr_;                                                                           \
    }                                                                                              \
  } while (0)

/* HDF5 calls return a negative value on failure. */
#define GORP_H5(call)                                                                              \
  do {                                                                                             \
    if ((long long)(call) < 0) GORP_ERR(GORP_ELIB, "HDF5 call failed: %s", #call);                 \
  } while (0)

/* MPI calls return MPI_SUCCESS (0) on success. */
#define GORP_MPI(call)                                                                             \
  do {                                                                                             \
    int gorp_mpierr_ = (call);                                                                     \
    if (gorp_mpierr_) GORP_ERR(GORP_ELIB, "MPI call failed (code %d): %s", gorp_mpierr_, #call);   \
  } while (0)

/* Allocates n zeroed elements of *ptr's type; fails with GORP_EMEM naming the role. */
#define GORP_ALLOC(ptr, n, role)                                                                   \
  do {                                                                                             \
    size_t gorp_n_ = (size_t)(n);                                                                  \
    (ptr) = calloc(gorp_n_ ? gorp_n_ : 1, sizeof(*(ptr)));                                         \
    if (!(ptr))                                                                                    \
      GORP_ERR(GORP_EMEM, "out of memory allocating %zu bytes for %s", gorp_n_ * sizeof(*(ptr)),   \
               (role));                                                                            \
  } while (0)

#endif
