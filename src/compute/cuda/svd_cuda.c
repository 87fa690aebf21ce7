/* The CUDA backend's svd_topk_right (backend.h): cuSOLVER's Jacobi SVD (gesvdj, economy size) of
 * the device matrix, its top-k right singular vectors copied out and signed by linalg.h's
 * convention (cuda_sign_fix_rows), so that they equal the CPU's LAPACK vectors to rounding, not
 * up to a sign. gesvdj takes any shape (gesvd needs rows >= columns) and returns the values in
 * descending order.
 * Not for: the randomized SVD or left vectors (the host model's linalg.h); speed (a workspace is
 * allocated per call). */
#include "kernels_cuda.h"

#include <cusolverDn.h>

/* A cuSOLVER call that does not return CUSOLVER_STATUS_SUCCESS is an error naming the call. */
#define CUSOLVER_CALL(call)                                                                        \
  do {                                                                                             \
    cusolverStatus_t gorp_solverr_ = (call);                                                       \
    if (gorp_solverr_ != CUSOLVER_STATUS_SUCCESS)                                                  \
      GORP_ERR(GORP_ELIB, "cuSOLVER call failed (status %d): %s", (int)gorp_solverr_, #call);      \
  } while (0)

/* created on the first call, on the device backend_cuda_ops chose */
static cusolverDnHandle_t solver;

/* G (m, n) row-major is, read column-major, X = G^T (n x m) with leading dimension n. gesvdj on
 * X = U S V^T gives G = V S U^T: G's right singular vectors are U's columns, each n contiguous
 * floats, i.e. Q's rows. */
static int svd_into(float *Q, float *sv, float *X, float *S, float *U, float *V, int *info,
                    float *work, int lwork, gesvdjInfo_t params, int m, int n, int k) {
  CUSOLVER_CALL(cusolverDnSgesvdj(solver, CUSOLVER_EIG_MODE_VECTOR, 1, n, m, X, n, S, U, n, V, m,
                                  work, lwork, info, params));
  int host_info = 0;
  CUDA_CALL(cudaMemcpy(&host_info, info, sizeof(int), cudaMemcpyDeviceToHost));
  if (host_info)
    GORP_ERR(GORP_ENUM, "SVD of a %d x %d matrix on the GPU did not converge (gesvdj info %d)", m,
             n, host_info);
  CUDA_CALL(cudaMemcpy(Q, U, (size_t)k * n * sizeof(float), cudaMemcpyDeviceToDevice));
  if (sv) CUDA_CALL(cudaMemcpy(sv, S, (size_t)k * sizeof(float), cudaMemcpyDeviceToDevice));
  return cuda_sign_fix_rows(Q, k, n);
}

int cuda_svd_topk_right(float *Q, float *sv, const float *G, int m, int n, int k) {
  const int p = m < n ? m : n;
  GORP_CHECK(m >= 1 && n >= 1 && k >= 1 && k <= p, GORP_EINPUT,
             "svd_topk_right: k = %d singular vectors of a %d x %d matrix (expected 1 <= k <= %d)",
             k, m, n, p);
  if (!solver) CUSOLVER_CALL(cusolverDnCreate(&solver));
  gesvdjInfo_t params;
  CUSOLVER_CALL(cusolverDnCreateGesvdjInfo(&params));
  int lwork = 0, rc = GORP_OK;
  float *buf = NULL;
  /* X (n, m) the copy gesvdj overwrites, S (p), U (n, p), V (m, p), then the work array */
  const size_t nx = (size_t)n * m, nu = (size_t)n * p, nv = (size_t)m * p;
  const cusolverStatus_t st = cusolverDnSgesvdj_bufferSize(
      solver, CUSOLVER_EIG_MODE_VECTOR, 1, n, m, NULL, n, NULL, NULL, n, NULL, m, &lwork, params);
  if (st != CUSOLVER_STATUS_SUCCESS) {
    rc = GORP_ERROR(GORP_ELIB, "cuSOLVER call failed (status %d): cusolverDnSgesvdj_bufferSize",
                    (int)st);
  } else {
    const size_t floats = nx + p + nu + nv + (size_t)lwork + 1; /* + 1: info */
    const cudaError_t e = cudaMalloc((void **)&buf, floats * sizeof(float));
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      buf = NULL;
      rc = GORP_ERROR(e == cudaErrorMemoryAllocation ? GORP_EMEM : GORP_ELIB,
                      "CUDA call failed (%s): cudaMalloc of %zu floats for a %d x %d SVD",
                      cudaGetErrorString(e), floats, m, n);
    }
  }
  if (!rc) {
    float *X = buf, *S = X + nx, *U = S + p, *V = U + nu, *work = V + nv;
    int *info = (int *)(work + lwork);
    const cudaError_t e = cudaMemcpy(X, G, nx * sizeof(float), cudaMemcpyDeviceToDevice);
    rc = e == cudaSuccess
             ? svd_into(Q, sv, X, S, U, V, info, work, lwork, params, m, n, k)
             : GORP_ERROR(GORP_ELIB, "CUDA call failed (%s): cudaMemcpy of the SVD's input",
                          cudaGetErrorString(e));
  }
  if (buf) cudaFree(buf);
  cusolverDnDestroyGesvdjInfo(params);
  return rc;
}
