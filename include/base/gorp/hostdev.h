/* GORP_HOST_DEVICE marks a small inline function that the CUDA kernels (compute/cuda/kernels.cu,
 * compiled by nvcc) call as well as the C code, so that both compute the same bits from one
 * definition (the RNG's mixing, exp_fast). Expands to nothing in C.
 * Not for: anything with state or a library call. */
#ifndef GORP_HOSTDEV_H
#define GORP_HOSTDEV_H

#ifdef __CUDACC__
#define GORP_HOST_DEVICE __host__ __device__
#else
#define GORP_HOST_DEVICE
#endif

#endif
