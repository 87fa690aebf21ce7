/* CUDA backend: the ops table of backend.h on one GPU. Memory is cudaMalloc'd device memory; gemm
 * is cuBLAS SGEMM (fp32, no TF32) on device arrays, and on host arrays (the host-resident model's
 * products) staged through a device buffer; gemm_bf16 is cublasGemmEx on bf16 device arrays with
 * fp32 sums; the element-wise ops and attention are the kernels of kernels.cu. Chosen with
 * run.backend = cuda; refuses cleanly when no GPU is present. Built as the module libgorp_cuda.so
 * that the registry (backend.c) loads only then (dlopen): a CPU run never maps cuBLAS (about
 * 150 MB of resident memory at start-up when it was linked in). The module is built with its own
 * copy of err.c, so it reports each failing CUDA or cuBLAS call itself (GORP_ERR, naming the
 * call) and returns the code: no failure aborts the process.
 * Not for: choosing the backend (backend.c); the kernels themselves (kernels.cu); several GPUs in
 * one process (each rank takes one, backend_cuda_ops). */
#include "gorp/backend.h"
#include "gorp/backend_cuda.h"
#include "gorp/err.h"
#include "kernels_cuda.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <limits.h>
#include <stdlib.h>

/* A cuBLAS call that does not return CUBLAS_STATUS_SUCCESS is an error naming the call (CUDA
 * runtime calls: CUDA_CALL, kernels_cuda.h). */
#define CUBLAS_CALL(call)                                                                          \
  do {                                                                                             \
    cublasStatus_t gorp_cublaserr_ = (call);                                                       \
    if (gorp_cublaserr_ != CUBLAS_STATUS_SUCCESS)                                                  \
      GORP_ERR(GORP_ELIB, "cuBLAS call failed (%s): %s", cublasGetStatusString(gorp_cublaserr_),   \
               #call);                                                                             \
  } while (0)

/* The handle's default math mode: fp32 products, TF32 only under NVIDIA_TF32_OVERRIDE=1. */
static cublasHandle_t handle;
static float *dev_buf;
static size_t dev_cap; /* floats */

/* An allocation's failure: GORP_EMEM when the device is out of memory. The error is cleared, as
 * it is no launch's, so that the next kernel's check does not report it. */
static int alloc_error(cudaError_t e, size_t bytes, const char *role) {
  (void)cudaGetLastError();
  return GORP_ERROR(e == cudaErrorMemoryAllocation ? GORP_EMEM : GORP_ELIB,
                    "CUDA call failed (%s): cudaMalloc of %zu bytes for %s", cudaGetErrorString(e),
                    bytes, role);
}

static int ensure_capacity(size_t n) {
  if (n <= dev_cap) return GORP_OK;
  float *old = dev_buf;
  dev_buf = NULL;
  dev_cap = 0;
  if (old) CUDA_CALL(cudaFree(old));
  const cudaError_t e = cudaMalloc((void **)&dev_buf, n * sizeof(float));
  if (e != cudaSuccess) {
    dev_buf = NULL;
    return alloc_error(e, n * sizeof(float), "the gemm staging buffer");
  }
  dev_cap = n;
  return GORP_OK;
}

static int cuda_alloc(void **p, size_t bytes) {
  *p = NULL;
  cudaError_t e = cudaMalloc(p, bytes);
  if (e != cudaSuccess) {
    *p = NULL;
    return alloc_error(e, bytes, "a device array");
  }
  if (bytes && (e = cudaMemset(*p, 0, bytes)) != cudaSuccess) {
    (void)cudaFree(*p);
    *p = NULL;
    GORP_ERR(GORP_ELIB, "CUDA call failed (%s): cudaMemset of a new %zu-byte array",
             cudaGetErrorString(e), bytes);
  }
  return GORP_OK;
}

static void cuda_free(void *p) {
  if (!p) return;
  const cudaError_t e = cudaFree(p);
  if (e != cudaSuccess) /* no status to return: reported only */
    (void)GORP_ERROR(GORP_ELIB, "CUDA call failed (%s): cudaFree(p)", cudaGetErrorString(e));
}

static int cuda_upload(void *dst, const void *host_src, size_t bytes) {
  if (bytes) CUDA_CALL(cudaMemcpy(dst, host_src, bytes, cudaMemcpyHostToDevice));
  return GORP_OK;
}

/* cudaMemcpy to the host returns once the copy, and so every op issued before it, is done. */
static int cuda_download(void *host_dst, const void *src, size_t bytes) {
  if (bytes) CUDA_CALL(cudaMemcpy(host_dst, src, bytes, cudaMemcpyDeviceToHost));
  return GORP_OK;
}

static int cuda_copy(void *dst, const void *src, size_t bytes) {
  if (bytes) CUDA_CALL(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
  return GORP_OK;
}

static int cuda_zero(void *p, size_t bytes) {
  if (bytes) CUDA_CALL(cudaMemset(p, 0, bytes));
  return GORP_OK;
}

/* 1 when p is device (or managed) memory that cuBLAS may read directly. A host pointer is
 * cudaMemoryTypeUnregistered (CUDA 11 and later); a failing query counts as host. */
static int on_device(const void *p) {
  struct cudaPointerAttributes at;
  if (cudaPointerGetAttributes(&at, p) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return at.type == cudaMemoryTypeDevice || at.type == cudaMemoryTypeManaged;
}

/* Floats a row-major operand of rows x cols with leading dimension ld spans: (rows - 1) * ld +
 * cols, so that a sub-block operand (a column offset inside a larger matrix) is never read past
 * its end; 0 when it is empty. */
static size_t span(int rows, int cols, int ld) {
  return rows > 0 && cols > 0 ? (size_t)(rows - 1) * ld + cols : 0;
}

/* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands. */
static int cuda_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                     int lda, const float *b, int ldb, float beta, float *c, int ldc) {
  if (m == 0 || n == 0) return GORP_OK;
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                          op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (on_device(a) && on_device(b) && on_device(c)) {
    CUBLAS_CALL(cublasSgemm(handle, op_b, op_a, n, m, k, &alpha, b, ldb, a, lda, &beta, c, ldc));
    return GORP_OK;
  }
  /* staged; cudaMemcpyDefault (unified addressing) also takes an operand already on the device */
  const size_t na = span(trans_a ? k : m, trans_a ? m : k, lda),
               nb = span(trans_b ? n : k, trans_b ? k : n, ldb), nc = span(m, n, ldc);
  GORP_CALL(ensure_capacity(na + nb + nc));
  float *da = dev_buf, *db = dev_buf + na, *dc = dev_buf + na + nb;
  if (na) CUDA_CALL(cudaMemcpy(da, a, na * sizeof(float), cudaMemcpyDefault));
  if (nb) CUDA_CALL(cudaMemcpy(db, b, nb * sizeof(float), cudaMemcpyDefault));
  if (beta != 0.0f) CUDA_CALL(cudaMemcpy(dc, c, nc * sizeof(float), cudaMemcpyDefault));
  CUBLAS_CALL(cublasSgemm(handle, op_b, op_a, n, m, k, &alpha, db, ldb, da, lda, &beta, dc, ldc));
  CUDA_CALL(cudaMemcpy(c, dc, nc * sizeof(float), cudaMemcpyDefault));
  return GORP_OK;
}

/* The same swap; bf16 A and B, fp32 sums and C. Device arrays only: no bf16 staging. */
static int cuda_gemm_bf16(int trans_a, int trans_b, int m, int n, int k, float alpha,
                          const uint16_t *a, int lda, const uint16_t *b, int ldb, float beta,
                          float *c, int ldc) {
  if (m == 0 || n == 0) return GORP_OK;
  GORP_CHECK(on_device(a) && on_device(b) && on_device(c), GORP_EINPUT,
             "gemm_bf16 (cuda): A, B and C must be device arrays (the backend's alloc), not host "
             "memory");
  CUBLAS_CALL(cublasGemmEx(handle, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                           trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b, CUDA_R_16BF,
                           ldb, a, CUDA_R_16BF, lda, &beta, c, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F,
                           CUBLAS_GEMM_DEFAULT));
  return GORP_OK;
}

/* One staging buffer and one kernel workspace: calls must not overlap (concurrent = 0). cuBLAS
 * picks its own launches: no thread count to set. */
static const backend_ops cuda_ops = {
    .name = "cuda",
    .gemm = cuda_gemm,
    .set_gemm_threads = NULL,
    .concurrent = 0,
    .alloc = cuda_alloc,
    .free = cuda_free,
    .upload = cuda_upload,
    .download = cuda_download,
    .copy = cuda_copy,
    .zero = cuda_zero,
    .gemm_bf16 = cuda_gemm_bf16,
    .svd_topk_right = cuda_svd_topk_right,
    CUDA_KERNEL_OPS,
};

/* This process's rank on its node, from the first variable the launcher sets (Open MPI, Slurm,
 * MPICH/Intel MPI, PMI); 0 when none is set or it is not a number. */
static int local_rank(void) {
  static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID",
                                     "MPI_LOCALRANKID", "PMI_LOCAL_RANK"};
  for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
    const char *s = getenv(vars[i]);
    if (!s || !*s) continue;
    char *end;
    const long r = strtol(s, &end, 10);
    return *end == '\0' && r >= 0 && r <= INT_MAX ? (int)r : 0;
  }
  return 0;
}

int backend_cuda_ops(const backend_ops **ops) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0)
    GORP_ERR(GORP_EINPUT, "backend 'cuda': no usable GPU (cudaGetDeviceCount: %s)",
             cudaGetErrorString(e));
  if (!handle) {
    /* the ranks of a node spread over its GPUs; under Slurm's --gpu-bind each task sees one GPU
     * (count 1), which every rank then takes */
    CUDA_CALL(cudaSetDevice(local_rank() % count));
    CUBLAS_CALL(cublasCreate(&handle));
  }
  *ops = &cuda_ops;
  return GORP_OK;
}
