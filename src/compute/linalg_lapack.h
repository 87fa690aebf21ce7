/* LAPACK plumbing shared by the local (linalg.c) and distributed (linalg_dist.c) SVDs: which
 * singular vectors a call wants, workspace queries and bounds, gesvd job letters and info codes,
 * in-place QR orthonormalisation. Internal to those two files (it lives in src/, not include/).
 * Not for: any other caller; the public API is linalg.h / linalg_dist.h. */
#ifndef GORP_LINALG_LAPACK_H
#define GORP_LINALG_LAPACK_H

#include <lapacke.h>
#include <stddef.h>

enum { WANT_VALUES, WANT_LEFT, WANT_RIGHT };

static inline int imin(int a, int b) {
  return a < b ? a : b;
}
static inline int imax(int a, int b) {
  return a > b ? a : b;
}
static inline size_t zmax(size_t a, size_t b) {
  return a > b ? a : b;
}

/* LAPACK reports optimal sizes as floats; round up so a large one is never short. */
size_t linalg_lwork_from(float q);
/* Optimal lwork of sgesvd (jobs ju, jvt) on a column-major rows x cols matrix. */
int linalg_query_gesvd(size_t *lwork, char ju, char jvt, int rows, int cols);
/* Smallest lwork sgesvd accepts (LAPACK's documented bound). */
size_t linalg_min_gesvd(int rows, int cols);
int linalg_gesvd_info(lapack_int info, const char *fn, int m, int n);
/* Orthonormalises the l vectors stored as rows of Y (l, len) (column-major len x l) in place. */
int linalg_orthonormalise(float *Y, int len, int l, float *tau, float *work, lapack_int lwork,
                          const char *fn);
char linalg_job_u(int want);
char linalg_job_vt(int want);

#endif
