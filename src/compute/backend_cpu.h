/* The CPU backend's ops table, for the registry (backend.c) alone. Internal to the compute layer
 * (it lives in src/, not include/). Not for: any other caller; the public API is backend.h. */
#ifndef GORP_BACKEND_CPU_H
#define GORP_BACKEND_CPU_H

#include "gorp/backend.h"

/* OpenBLAS SGEMM on the OpenMP threads (backend_cpu.c). */
extern const backend_ops backend_cpu_ops;

#endif
