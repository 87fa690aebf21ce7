/* The CUDA runtime as the kernel emulator sees it (test only): what kernels.cu and
 * kernels_cuda.h call, on host memory, and the device-side names of CUDA C++ (threadIdx,
 * __syncthreads, __shfl_xor_sync, __shared__, launches) mapped onto emu.cpp's fibers. Found before
 * the toolkit's header because this folder is first on the emulated module's include path.
 * Not for: anything but tests/cuda_emu (the real module builds with nvcc and the toolkit). */
#ifndef GORP_CUDA_EMU_RUNTIME_H
#define GORP_CUDA_EMU_RUNTIME_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9
} cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};

const char *cudaGetErrorString(cudaError_t e);
/* the last launch's error, cleared by the call (a bad launch configuration sets it) */
cudaError_t cudaGetLastError(void);
/* device memory is host memory filled with 0xff bytes (NaN floats), as uninitialised memory,
 * that host code cannot access except between emu_device_open and emu_device_close (calls nest;
 * the runtime's own calls and every launch open it) */
void emu_device_open(void);
void emu_device_close(void);
cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind);
cudaError_t cudaMemset(void *p, int value, size_t bytes);

#ifdef __cplusplus
}

/* ---- device code (kernels_emu.cpp, from kernels.cu by transform.cmake) ---- */
#include <cstring>
#include <functional>

#define __host__
#define __device__
#define __global__
/* one static array, which every fiber of the running block sees; it keeps the previous block's
 * values, as shared memory is never initialised */
#define __shared__ static
#define __launch_bounds__(n)

struct emu_dim {
  unsigned int x, y, z;
};
extern emu_dim threadIdx, blockIdx, blockDim, gridDim;

void emu_syncthreads(void);
#define __syncthreads emu_syncthreads
/* waits for the 32 fibers of the calling one's warp */
void emu_warp_sync(void);
/* a slot of 8 bytes per thread of the block through which a shuffle exchanges values */
extern unsigned char emu_lane_slots[1024 * 8];

template <class T> T __shfl_xor_sync(unsigned int mask, T x, int lane_mask) {
  static_assert(sizeof(T) <= 8, "one slot per thread");
  (void)mask;
  std::memcpy(emu_lane_slots + 8 * threadIdx.x, &x, sizeof(T));
  emu_warp_sync();
  T y;
  const unsigned int from = threadIdx.x / 32 * 32 + (threadIdx.x % 32 ^ (unsigned int)lane_mask);
  std::memcpy(&y, emu_lane_slots + 8 * from, sizeof(T));
  emu_warp_sync(); /* no lane overwrites its slot before every lane has read */
  return y;
}

/* the dynamic shared memory of the running block (extern __shared__ arrays) */
extern float emu_dynamic_smem[];

struct emu_launch_config {
  unsigned int grid, block;
  size_t smem;
};
inline emu_launch_config emu_config(size_t grid, size_t block, size_t smem = 0) {
  return emu_launch_config{(unsigned int)grid, (unsigned int)block, smem};
}
/* runs body once per thread of every block; an invalid configuration (as CUDA's limits) runs
 * nothing and sets the error that cudaGetLastError returns */
void emu_run(emu_launch_config c, const std::function<void()> &body);
template <class K, class... A> void emu_launch(emu_launch_config c, K kernel, A... args) {
  emu_run(c, [=]() { kernel(args...); });
}
#endif

#endif
