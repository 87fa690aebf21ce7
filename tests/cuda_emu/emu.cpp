/* A CUDA device emulated on the CPU for the kernels of kernels.cu (test only, the module
 * libgorp_cuda_emu.so): the blocks of a launch run one after another, and the threads of a
 * block are fibers (ucontext) that run in turn up to their next barrier (__syncthreads, or a
 * warp's shuffle), so every barrier, shared-memory array and warp shuffle of a kernel has its
 * CUDA meaning. What it checks: each kernel's arithmetic and indexing, its reductions' trees, its
 * barriers' counts (a barrier that not every live thread of the block reaches deadlocks: reported
 * and aborted), launch limits (block size, dynamic shared memory). What it cannot: races inside a
 * block (a fiber runs alone up to its barrier), timing, cuBLAS and cuSOLVER (not emulated).
 * Memory spaces it does check: device memory is host memory that host code cannot touch (each
 * allocation its own mapping, without access outside the runtime's calls, emu_device_open), so
 * host code that reads or writes a device array instead of downloading or uploading it faults
 * where it does.
 * Not for: speed (a context switch per thread per barrier). */
#include "cuda_runtime.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sys/mman.h>
#include <unistd.h>
#include <ucontext.h>
#include <vector>

enum {
  MAX_THREADS = 1024,          /* of a block, as CUDA's limit */
  MAX_DYNAMIC_SMEM = 48 << 10, /* bytes of dynamic shared memory without an opt-in */
  STACK_BYTES = 64 << 10       /* each fiber's stack */
};

emu_dim threadIdx, blockIdx, blockDim, gridDim;
unsigned char emu_lane_slots[MAX_THREADS * 8];
float emu_dynamic_smem[MAX_DYNAMIC_SMEM / sizeof(float)];

static cudaError_t last_error = cudaSuccess;

/* every device allocation (its mapping's length) and how many runtime calls have it open now */
static std::map<void *, size_t> device_maps;
static int open_depth;

static size_t map_length(size_t bytes) {
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  return (bytes ? bytes + page - 1 : page) / page * page;
}

static void protect_all(int prot) {
  for (const auto &d : device_maps)
    if (mprotect(d.first, d.second, prot) != 0) {
      std::perror("cuda_emu: mprotect of device memory");
      std::abort();
    }
}

extern "C" void emu_device_open(void) {
  if (open_depth++ == 0) protect_all(PROT_READ | PROT_WRITE);
}

extern "C" void emu_device_close(void) {
  if (--open_depth == 0) protect_all(PROT_NONE);
}

static ucontext_t scheduler;
static std::vector<ucontext_t> fibers;
static std::vector<char *> stacks;
static std::vector<int> finished;
static const std::function<void()> *body_now;
static int current, live; /* the running fiber; the block's fibers not yet finished */
/* a barrier: arrivals so far and its generation (bumped when it opens) */
static int block_arrived, block_generation;
static int warp_arrived[MAX_THREADS / 32], warp_generation[MAX_THREADS / 32];

static void yield_to_scheduler() {
  swapcontext(&fibers[current], &scheduler);
}

/* __syncthreads: opens when every live thread of the block has arrived (a thread that has
 * returned counts as arrived, as on Volta and later GPUs) */
void emu_syncthreads(void) {
  const int generation = block_generation;
  if (++block_arrived >= live) {
    block_arrived = 0;
    block_generation++;
    return;
  }
  while (block_generation == generation) yield_to_scheduler();
}

void emu_warp_sync(void) {
  const int w = (int)threadIdx.x / 32, generation = warp_generation[w];
  if (++warp_arrived[w] == 32) {
    warp_arrived[w] = 0;
    warp_generation[w]++;
    return;
  }
  while (warp_generation[w] == generation) yield_to_scheduler();
}

static void fiber_entry() {
  (*body_now)();
  finished[current] = 1;
  live--;
  /* the threads waiting at a barrier may now be all that are left */
  if (block_arrived > 0 && block_arrived >= live) {
    block_arrived = 0;
    block_generation++;
  }
}

void emu_run(emu_launch_config c, const std::function<void()> &body) {
  if (c.block == 0 || c.block > MAX_THREADS || c.block % 32 || c.grid == 0 ||
      c.smem > MAX_DYNAMIC_SMEM) {
    /* CUDA takes any block size up to 1024; the emulated shuffles need whole warps */
    last_error = cudaErrorInvalidConfiguration;
    return;
  }
  emu_device_open();
  gridDim = {c.grid, 1, 1};
  blockDim = {c.block, 1, 1};
  body_now = &body;
  const int n = (int)c.block;
  fibers.resize(n);
  finished.assign(n, 0);
  while ((int)stacks.size() < n) stacks.push_back(static_cast<char *>(std::malloc(STACK_BYTES)));
  for (unsigned int b = 0; b < c.grid; b++) {
    blockIdx = {b, 0, 0};
    std::memset(emu_dynamic_smem, 0xff, c.smem); /* NaNs: shared memory starts undefined */
    block_arrived = 0;
    std::memset(warp_arrived, 0, sizeof(warp_arrived));
    for (int t = 0; t < n; t++) {
      getcontext(&fibers[t]);
      fibers[t].uc_stack.ss_sp = stacks[t];
      fibers[t].uc_stack.ss_size = STACK_BYTES;
      fibers[t].uc_link = &scheduler;
      makecontext(&fibers[t], fiber_entry, 0);
      finished[t] = 0;
    }
    live = n;
    while (live > 0) {
      const int live_before = live, generation_before = block_generation;
      int warp_progress = 0;
      for (current = 0; current < n; current++) {
        if (finished[current]) continue;
        threadIdx = {(unsigned int)current, 0, 0};
        const int w = current / 32, warp_before = warp_generation[w];
        swapcontext(&scheduler, &fibers[current]);
        warp_progress += warp_generation[w] != warp_before;
      }
      if (live == live_before && block_generation == generation_before && !warp_progress) {
        std::fprintf(stderr,
                     "cuda_emu: block %u of a %u x %u launch deadlocks: %d of %d live threads wait "
                     "at __syncthreads (a barrier some threads never reach)\n",
                     b, c.grid, c.block, block_arrived, live);
        std::abort();
      }
    }
  }
  emu_device_close();
}

extern "C" {

const char *cudaGetErrorString(cudaError_t e) {
  switch (e) {
  case cudaSuccess:
    return "no error";
  case cudaErrorInvalidValue:
    return "invalid argument";
  case cudaErrorMemoryAllocation:
    return "out of memory";
  case cudaErrorInvalidConfiguration:
    return "invalid configuration argument";
  }
  return "unknown error";
}

cudaError_t cudaGetLastError(void) {
  const cudaError_t e = last_error;
  last_error = cudaSuccess;
  return e;
}

cudaError_t cudaMalloc(void **p, size_t bytes) {
  const size_t len = map_length(bytes);
  void *d = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (d == MAP_FAILED) {
    *p = NULL;
    return cudaErrorMemoryAllocation;
  }
  std::memset(d, 0xff, len);
  if (open_depth == 0 && mprotect(d, len, PROT_NONE) != 0) std::abort();
  device_maps[d] = len;
  *p = d;
  return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
  if (!p) return cudaSuccess;
  const auto d = device_maps.find(p);
  if (d == device_maps.end()) return cudaErrorInvalidValue;
  munmap(d->first, d->second);
  device_maps.erase(d);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind) {
  (void)kind;
  emu_device_open();
  if (bytes) std::memcpy(dst, src, bytes);
  emu_device_close();
  return cudaSuccess;
}

cudaError_t cudaMemset(void *p, int value, size_t bytes) {
  emu_device_open();
  if (bytes) std::memset(p, value, bytes);
  emu_device_close();
  return cudaSuccess;
}
}
