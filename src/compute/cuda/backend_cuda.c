/* CUDA backend: cuBLAS SGEMM on host arrays staged through device buffers. Chosen with
 * run.backend = cuda; refuses cleanly when no GPU is present. Built as the module
 * libgorp_cuda.so that the registry (backend.c) loads only then (dlopen): a CPU run never maps
 * cuBLAS (about 150 MB of resident memory at start-up when it was linked in). The module is built
 * with its own copy of err.c, so it reports each failing CUDA or cuBLAS call itself (GORP_ERR,
 * naming the call) and returns the code: no failure aborts the process.
 * Not for: choosing the backend (backend.c) or anything but GEMM. */
#include "gorp/backend.h"
#include "gorp/backend_cuda.h"
#include "gorp/err.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

/* A CUDA runtime call that does not return cudaSuccess is an error naming the call. */
#define CUDA_CALL(call)                                                                            \
  do {                                                                                             \
    cudaError_t gorp_cuerr_ = (call);                                                              \
    if (gorp_cuerr_ != cudaSuccess)                                                                \
      GORP_ERR(GORP_ELIB, "CUDA call failed (%s): %s", cudaGetErrorString(gorp_cuerr_), #call);    \
  } while (0)

/* The same for cuBLAS. */
#define CUBLAS_CALL(call)                                                                          \
  do {                                                                                             \
    cublasStatus_t gorp_cublaserr_ = (call);                                                       \
    if (gorp_cublaserr_ != CUBLAS_STATUS_SUCCESS)                                                  \
      GORP_ERR(GORP_ELIB, "cuBLAS call failed (%s): %s", cublasGetStatusString(gorp_cublaserr_),   \
               #call);                                                                             \
  } while (0)

static cublasHandle_t handle;
static float *dev_buf;
static size_t dev_cap; /* floats */

static int ensure_capacity(size_t n) {
  if (n <= dev_cap) return GORP_OK;
  float *old = dev_buf;
  dev_buf = NULL;
  dev_cap = 0;
  if (old) CUDA_CALL(cudaFree(old));
  const cudaError_t e = cudaMalloc((void **)&dev_buf, n * sizeof(float));
  if (e != cudaSuccess)
    GORP_ERR(GORP_ELIB, "CUDA call failed (%s): cudaMalloc of %zu floats", cudaGetErrorString(e),
             n);
  dev_cap = n;
  return GORP_OK;
}

/* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands. */
static int cuda_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                     int lda, const float *b, int ldb, float beta, float *c, int ldc) {
  /* a row-major operand of R rows spans (R - 1) * ld + width floats: copy no more, so that a
   * sub-block operand (a column offset inside a larger matrix) is never read past its end */
  size_t na = (size_t)((trans_a ? k : m) - 1) * lda + (trans_a ? m : k),
         nb = (size_t)((trans_b ? n : k) - 1) * ldb + (trans_b ? k : n),
         nc = (size_t)(m - 1) * ldc + n;
  GORP_CALL(ensure_capacity(na + nb + nc));
  float *da = dev_buf, *db = dev_buf + na, *dc = dev_buf + na + nb;
  CUDA_CALL(cudaMemcpy(da, a, na * sizeof(float), cudaMemcpyHostToDevice));
  CUDA_CALL(cudaMemcpy(db, b, nb * sizeof(float), cudaMemcpyHostToDevice));
  if (beta != 0.0f) CUDA_CALL(cudaMemcpy(dc, c, nc * sizeof(float), cudaMemcpyHostToDevice));
  CUBLAS_CALL(cublasSgemm(handle, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                          trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, db, ldb, da, lda,
                          &beta, dc, ldc));
  CUDA_CALL(cudaMemcpy(c, dc, nc * sizeof(float), cudaMemcpyDeviceToHost));
  return GORP_OK;
}

/* one staging buffer: calls must not overlap */
static const backend_ops cuda_ops = {"cuda", cuda_gemm, NULL, 0};

int backend_cuda_ops(const backend_ops **ops) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0)
    GORP_ERR(GORP_EINPUT, "backend 'cuda': no usable GPU (cudaGetDeviceCount: %s)",
             cudaGetErrorString(e));
  if (!handle) CUBLAS_CALL(cublasCreate(&handle));
  *ops = &cuda_ops;
  return GORP_OK;
}
