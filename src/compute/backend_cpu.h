/* The CPU backend's ops table, for the registry (backend.c) alone, and the two ops of
 * backend_cpu.c that its table (backend_cpu_table.c) points at. Internal to the compute layer
 * (it lives in src/, not include/). Not for: any other caller; the public API is backend.h. */
#ifndef GORP_BACKEND_CPU_H
#define GORP_BACKEND_CPU_H

#include "gorp/backend.h"

/* OpenBLAS SGEMM on the OpenMP threads, kernels.h's loops, host memory (backend_cpu_table.c). */
extern const backend_ops backend_cpu_ops;

/* backend_ops.gemm and .set_gemm_threads of the CPU (backend_cpu.c) */
int backend_cpu_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                     int lda, const float *b, int ldb, float beta, float *c, int ldc) GORP_WUR;
int backend_cpu_set_gemm_threads(int n);

#endif
