/* Shared helpers of the C unit tests: check counting with a message on failure, capture of
 * stderr (to check error messages), and the closing "N passed, M failed" line.
 * Not for: anything in the gorp library. */
#ifndef GORP_TESTUTIL_H
#define GORP_TESTUTIL_H

#include <stddef.h>
#include <stdio.h>

extern int n_pass, n_fail;

/* Counts one check; on failure prints where, the condition and a printf-style explanation. */
#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (cond) {                                                                                    \
      n_pass++;                                                                                    \
    } else {                                                                                       \
      n_fail++;                                                                                    \
      printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                                       \
      printf(__VA_ARGS__);                                                                         \
      printf("\n");                                                                                \
    }                                                                                              \
  } while (0)

/* stderr goes to a temporary file between capture_begin and capture_end. */
void capture_begin(void);
/* Restores stderr and returns what was written to it (malloc'd). */
char *capture_end(void);
/* snprintf into a PATH_MAX buffer; exits when the path does not fit. */
void fmt_path(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Removes a folder and everything below it. */
void rm_tree(const char *dir);
/* max |a - b| / max |b| over n (INFINITY when b is all zero). */
double rel_diff(const float *a, const float *b, size_t n);
struct gorp_config;
/* Loads a config from text (written to a temporary file) with overrides; 0 on success. */
int config_from_text(struct gorp_config *c, const char *text, char *const *overrides, int n);
/* For the tests that tests/cli runs under mpirun: */
/* 1 when the process was started by mpirun (else only the MPI-free part runs). */
int launched_by_mpi(void);
/* Collective check over MPI_COMM_WORLD: counts once, passing when ok on every rank; rank 0 prints
 * the line with the worst (largest) value over the ranks formatted by fmt. */
void check_all(const char *name, int ok, double value, const char *fmt);
/* calloc that never returns NULL (a test out of memory exits 2). */
void *xcalloc(size_t n, size_t size);
struct dist_matrix;
/* A copy of this rank's shard of the whole matrix G under d: rows (len, n) or columns (m, len). */
float *dist_shard_copy(const float *G, const struct dist_matrix *d);

/* Prints "N passed, M failed" and returns the process exit code. */
int tests_finish(void);

#endif
