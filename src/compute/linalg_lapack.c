/* LAPACK plumbing shared by linalg.c and linalg_dist.c (see linalg_lapack.h). */
#include "linalg_lapack.h"

#include "gorp/err.h"

#include <math.h>

/* LAPACK reports optimal sizes as floats; round up so a large one is never short. */
size_t linalg_lwork_from(float q) {
  return (size_t)ceil((double)q * (1.0 + 1e-6)) + 1;
}

/* Optimal lwork of sgesvd (jobs ju, jvt) on a column-major rows x cols matrix. */
int linalg_query_gesvd(size_t *lwork, char ju, char jvt, int rows, int cols) {
  float q = 0.0f, dummy = 0.0f;
  lapack_int info = LAPACKE_sgesvd_work(LAPACK_COL_MAJOR, ju, jvt, rows, cols, &dummy, rows, &dummy,
                                        &dummy, 1, &dummy, 1, &q, -1);
  if (info)
    GORP_ERR(GORP_ELIB, "sgesvd workspace query (%c%c, %d x %d) failed: info %d", ju, jvt, rows,
             cols, (int)info);
  *lwork = linalg_lwork_from(q);
  return GORP_OK;
}

/* Smallest lwork sgesvd accepts (LAPACK's documented bound). */
size_t linalg_min_gesvd(int rows, int cols) {
  const size_t mn = (size_t)imin(rows, cols), mx = (size_t)imax(rows, cols);
  return zmax(1, zmax(3 * mn + mx, 5 * mn));
}

int linalg_gesvd_info(lapack_int info, const char *fn, int m, int n) {
  if (info < 0) GORP_ERR(GORP_ELIB, "%s: sgesvd rejected argument %d", fn, (int)-info);
  if (info > 0)
    GORP_ERR(GORP_ENUM,
             "%s: sgesvd did not converge on a (%d x %d) matrix (%d superdiagonals left)", fn, m, n,
             (int)info);
  return GORP_OK;
}

/* Orthonormalises the l vectors stored as rows of Y (l, len) (column-major len x l) in place. */
int linalg_orthonormalise(float *Y, int len, int l, float *tau, float *work, lapack_int lwork,
                          const char *fn) {
  lapack_int info = LAPACKE_sgeqrf_work(LAPACK_COL_MAJOR, len, l, Y, len, tau, work, lwork);
  if (!info) info = LAPACKE_sorgqr_work(LAPACK_COL_MAJOR, len, l, l, Y, len, tau, work, lwork);
  if (info)
    GORP_ERR(GORP_ELIB, "%s: sgeqrf/sorgqr (%d x %d) failed: info %d", fn, len, l, (int)info);
  return GORP_OK;
}

char linalg_job_u(int want) {
  return want == WANT_RIGHT ? 'O' : 'N';
}

char linalg_job_vt(int want) {
  return want == WANT_LEFT ? 'O' : 'N';
}
