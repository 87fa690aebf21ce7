/* The backend registry: the names gorp knows (cpu, cuda), the one selected for this process and
 * how each is opened: the CPU table is linked in, the CUDA one is loaded from the module
 * libgorp_cuda.so (dlopen) only when asked for, so that a CPU run never maps cuBLAS.
 * Not for: any backend's ops (backend_cpu.c, cuda/backend_cuda.c); a new backend is one entry of
 * `registry` and one function that opens it. */
#include "gorp/backend.h"
#include "gorp/err.h"

#include "backend_cpu.h"

#include <stdio.h>
#include <string.h>

#ifdef GORP_HAVE_CUDA
#include "gorp/backend_cuda.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>
#endif

static const backend_ops *current = &backend_cpu_ops;

static int open_cpu(const backend_ops **ops) {
  *ops = &backend_cpu_ops;
  return GORP_OK;
}

#ifdef GORP_HAVE_CUDA
/* The CUDA module's path: $GORP_CUDA_MODULE, else beside the executable (build/gorp), else where
 * the build put it (test programs), else the installed library folder; tried gets each place with
 * the loader's reason. */
static void *cuda_module_open(char *tried, size_t n) {
  const char *env = getenv("GORP_CUDA_MODULE");
  if (env) {
    void *h = dlopen(env, RTLD_NOW | RTLD_LOCAL);
    if (!h) snprintf(tried, n, "%s: %s", env, dlerror());
    return h;
  }
  char exe[4096], path[4200];
  const ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  const char *candidates[3] = {NULL, GORP_CUDA_MODULE_BUILD, GORP_CUDA_MODULE_INSTALL};
  if (len > 0) {
    exe[len] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    snprintf(path, sizeof(path), "%s/libgorp_cuda.so", exe);
    candidates[0] = path;
  }
  tried[0] = '\0';
  for (int i = 0; i < 3; i++) {
    if (!candidates[i]) continue;
    void *h = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
    if (h) return h;
    /* each place with its own reason: a module that exists but does not link (a missing
     * symbol, a missing cuBLAS) must not hide behind the last place's "no such file" */
    snprintf(tried + strlen(tried), n - strlen(tried), "%s%s: %s", tried[0] ? "; " : "",
             candidates[i], dlerror());
  }
  return NULL;
}

/* The module reports its own failures (it is built with err.c) and returns their code. */
static int open_cuda(const backend_ops **ops) {
  char tried[4096];
  void *h = cuda_module_open(tried, sizeof(tried));
  if (!h) GORP_ERR(GORP_EINPUT, "backend 'cuda': cannot load the CUDA module (tried %s)", tried);
  backend_cuda_entry entry = (backend_cuda_entry)dlsym(h, BACKEND_CUDA_ENTRY);
  if (!entry) GORP_ERR(GORP_ELIB, "backend 'cuda': %s has no %s", tried, BACKEND_CUDA_ENTRY);
  GORP_CALL(entry(ops));
  return GORP_OK;
}
#else
static int open_cuda(const backend_ops **ops) {
  (void)ops;
  GORP_ERR(GORP_EINPUT, "backend 'cuda' requested but this gorp was built without CUDA");
}
#endif

static const struct {
  const char *name;
  int (*open)(const backend_ops **ops);
} registry[] = {{"cpu", open_cpu}, {"cuda", open_cuda}};
enum { N_BACKENDS = sizeof(registry) / sizeof(registry[0]) };

int backend_select(const char *name) {
  for (int i = 0; i < N_BACKENDS; i++)
    if (!strcmp(name, registry[i].name)) {
      const backend_ops *ops;
      GORP_CALL(registry[i].open(&ops));
      current = ops;
      return GORP_OK;
    }
  char known[128] = ""; /* "cpu or cuda" */
  for (int i = 0; i < N_BACKENDS; i++)
    snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s",
             i == 0                ? ""
             : i == N_BACKENDS - 1 ? " or "
                                   : ", ",
             registry[i].name);
  GORP_ERR(GORP_EINPUT, "unknown backend '%s' (expected %s)", name, known);
}

const backend_ops *backend_get(void) {
  return current;
}

const backend_ops *backend_host(void) {
  return &backend_cpu_ops;
}
