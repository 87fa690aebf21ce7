/* CUDA backend: cuBLAS SGEMM on host arrays staged through device buffers. Chosen with
 * run.backend = cuda; refuses cleanly when no GPU is present. Built as the module
 * libgorp_cuda.so that backend_cpu.c loads only then (dlopen): a CPU run never maps cuBLAS (about
 * 150 MB of resident memory at start-up when it was linked in). The module calls nothing of gorp,
 * so its one entry point returns its message instead of reporting it. */
#include "gorp/backend.h"
#include "gorp/backend_cuda.h"
#include "gorp/err.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

static cublasHandle_t handle;
static float *dev_buf;
static size_t dev_cap; /* floats */

static int ensure_capacity(size_t n) {
  if (n <= dev_cap) return 0;
  if (dev_buf) cudaFree(dev_buf);
  dev_buf = NULL;
  dev_cap = 0;
  if (cudaMalloc((void **)&dev_buf, n * sizeof(float)) != cudaSuccess) return 1;
  dev_cap = n;
  return 0;
}

/* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands. */
static void cuda_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                      int lda, const float *b, int ldb, float beta, float *c, int ldc) {
  /* a row-major operand of R rows spans (R - 1) * ld + width floats: copy no more, so that a
   * sub-block operand (a column offset inside a larger matrix) is never read past its end */
  size_t na = (size_t)((trans_a ? k : m) - 1) * lda + (trans_a ? m : k),
         nb = (size_t)((trans_b ? n : k) - 1) * ldb + (trans_b ? k : n),
         nc = (size_t)(m - 1) * ldc + n;
  if (ensure_capacity(na + nb + nc)) {
    fprintf(stderr, "gorp: error: cudaMalloc of %zu floats failed\n", na + nb + nc);
    abort();
  }
  float *da = dev_buf, *db = dev_buf + na, *dc = dev_buf + na + nb;
  cudaMemcpy(da, a, na * sizeof(float), cudaMemcpyHostToDevice);
  cudaMemcpy(db, b, nb * sizeof(float), cudaMemcpyHostToDevice);
  if (beta != 0.0f) cudaMemcpy(dc, c, nc * sizeof(float), cudaMemcpyHostToDevice);
  cublasStatus_t st =
      cublasSgemm(handle, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                  n, m, k, &alpha, db, ldb, da, lda, &beta, dc, ldc);
  if (st != CUBLAS_STATUS_SUCCESS) {
    fprintf(stderr, "gorp: error: cublasSgemm failed with status %d\n", (int)st);
    abort();
  }
  cudaMemcpy(c, dc, nc * sizeof(float), cudaMemcpyDeviceToHost);
}

/* one staging buffer: calls must not overlap */
static const backend_ops cuda_ops = {"cuda", cuda_gemm, NULL, 0};

int backend_cuda_ops(const backend_ops **ops, char *msg, size_t n) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    snprintf(msg, n, "backend 'cuda': no usable GPU (cudaGetDeviceCount: %s)",
             cudaGetErrorString(e));
    return GORP_EINPUT;
  }
  if (!handle && cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS) {
    snprintf(msg, n, "backend 'cuda': cublasCreate failed");
    return GORP_ELIB;
  }
  *ops = &cuda_ops;
  return GORP_OK;
}
