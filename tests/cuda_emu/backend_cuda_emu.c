/* The CUDA module's ops table with the kernels of kernels.cu run by the CPU emulator (emu.cpp):
 * built as libgorp_cuda_emu.so, which the registry loads as the "cuda" backend when
 * GORP_CUDA_MODULE names it (test only: tests/CMakeLists.txt's test_backend_ops_cuda_emu runs
 * the conformance test on it, so that every CUDA kernel's arithmetic is checked on each CI run
 * without a GPU). Memory is the emulated runtime's (host memory filled with NaNs, as uninitialised
 * device memory); the element-wise ops and attention are kernels.cu's launchers as the real module
 * calls them. cuBLAS and cuSOLVER are not emulated: gemm and gemm_bf16 are the CPU table's, and
 * the SVD is the CPU's with its rows' signs scrambled before cuda_sign_fix_rows (the kernel that
 * signs cuSOLVER's vectors), so that the kernel must restore linalg.h's convention.
 * The CPU table and err.c's reporting come from the test program (linked with ENABLE_EXPORTS).
 * Not for: anything outside tests; it proves nothing about a GPU's own behaviour (emu.cpp). */
#include "gorp/backend.h"
#include "gorp/backend_cuda.h"
#include "gorp/err.h"
#include "kernels_cuda.h"

#include <stdlib.h>

static int emu_alloc(void **p, size_t bytes) {
  if (cudaMalloc(p, bytes) != cudaSuccess) {
    *p = NULL;
    GORP_ERR(GORP_EMEM, "emulated cudaMalloc of %zu bytes failed", bytes);
  }
  CUDA_CALL(cudaMemset(*p, 0, bytes)); /* the table's alloc zeroes, as backend_cuda.c's */
  return GORP_OK;
}

static void emu_free(void *p) {
  (void)cudaFree(p);
}

static int emu_upload(void *dst, const void *host_src, size_t bytes) {
  CUDA_CALL(cudaMemcpy(dst, host_src, bytes, cudaMemcpyHostToDevice));
  return GORP_OK;
}

static int emu_download(void *host_dst, const void *src, size_t bytes) {
  CUDA_CALL(cudaMemcpy(host_dst, src, bytes, cudaMemcpyDeviceToHost));
  return GORP_OK;
}

static int emu_copy(void *dst, const void *src, size_t bytes) {
  CUDA_CALL(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
  return GORP_OK;
}

static int emu_zero(void *p, size_t bytes) {
  CUDA_CALL(cudaMemset(p, 0, bytes));
  return GORP_OK;
}

/* The CPU's products stand for cuBLAS's, on the device arrays (open for the call; a host
 * operand, as the real module stages it, is readable anyway). */
static int emu_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                    int lda, const float *b, int ldb, float beta, float *c, int ldc) {
  emu_device_open();
  const int rc =
      backend_host()->gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  emu_device_close();
  return rc;
}

static int emu_gemm_bf16(int trans_a, int trans_b, int m, int n, int k, float alpha,
                         const uint16_t *a, int lda, const uint16_t *b, int ldb, float beta,
                         float *c, int ldc) {
  emu_device_open();
  const int rc =
      backend_host()->gemm_bf16(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  emu_device_close();
  return rc;
}

/* cuSOLVER's vectors come with arbitrary signs: every other row negated, then the kernel */
static int emu_svd_topk_right(float *Q, float *sv, const float *G, int m, int n, int k) {
  emu_device_open();
  int rc = backend_host()->svd_topk_right(Q, sv, G, m, n, k);
  if (!rc)
    for (int r = 0; r < k; r += 2)
      for (int j = 0; j < n; j++) Q[(size_t)r * n + j] = -Q[(size_t)r * n + j];
  emu_device_close();
  return rc ? rc : cuda_sign_fix_rows(Q, k, n);
}

static const backend_ops emu_ops = {
    .name = "cuda",
    .gemm = emu_gemm,
    .set_gemm_threads = NULL,
    .concurrent = 0,
    .alloc = emu_alloc,
    .free = emu_free,
    .upload = emu_upload,
    .download = emu_download,
    .copy = emu_copy,
    .zero = emu_zero,
    .gemm_bf16 = emu_gemm_bf16,
    .svd_topk_right = emu_svd_topk_right,
    CUDA_KERNEL_OPS,
};

int backend_cuda_ops(const backend_ops **ops) {
  *ops = &emu_ops;
  return GORP_OK;
}
