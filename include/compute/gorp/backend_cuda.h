/* The entry point of the CUDA backend module libgorp_cuda.so (src/compute/cuda/backend_cuda.c),
 * which the registry (backend.c) loads with dlopen and finds with dlsym under BACKEND_CUDA_ENTRY.
 * Not for: anything else; the CPU build never includes the module. */
#ifndef GORP_BACKEND_CUDA_H
#define GORP_BACKEND_CUDA_H

#include "gorp/backend.h"

#define BACKEND_CUDA_ENTRY "backend_cuda_ops"

/* *ops = the cuBLAS table; on failure reports why (no GPU, cublasCreate) and returns its code. */
int backend_cuda_ops(const backend_ops **ops);
typedef int (*backend_cuda_entry)(const backend_ops **ops);

#endif
