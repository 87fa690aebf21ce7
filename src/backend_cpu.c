/* CPU backend: OpenBLAS. Also holds the run-time selection of the backend table. */
#include "gorp/backend.h"
#include "gorp/err.h"

#include <cblas.h>
#include <string.h>

#ifdef GORP_HAVE_CUDA
#include "gorp/backend_cuda.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#endif

static void cpu_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                     int lda, const float *b, int ldb, float beta, float *c, int ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static const backend_ops cpu_ops = {"cpu", cpu_gemm};
static const backend_ops *current = &cpu_ops;

#ifdef GORP_HAVE_CUDA
/* The CUDA module's path: $GORP_CUDA_MODULE, else beside the executable (build/gorp), else where
 * the build put it (test programs), else the installed library folder. */
static void *cuda_module_open(char *tried, size_t n) {
  const char *env = getenv("GORP_CUDA_MODULE");
  if (env) {
    snprintf(tried, n, "%s", env);
    return dlopen(env, RTLD_NOW | RTLD_LOCAL);
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
    snprintf(tried + strlen(tried), n - strlen(tried), "%s%s", tried[0] ? ", " : "", candidates[i]);
  }
  return NULL;
}

static int select_cuda(const backend_ops **ops) {
  char tried[1024], msg[512];
  void *h = cuda_module_open(tried, sizeof(tried));
  if (!h)
    GORP_ERR(GORP_EINPUT, "backend 'cuda': cannot load the CUDA module (tried %s): %s", tried,
             dlerror());
  backend_cuda_entry entry = (backend_cuda_entry)dlsym(h, BACKEND_CUDA_ENTRY);
  if (!entry) GORP_ERR(GORP_ELIB, "backend 'cuda': %s has no %s", tried, BACKEND_CUDA_ENTRY);
  const int rc = entry(ops, msg, sizeof(msg));
  if (rc) GORP_ERR(rc, "%s", msg);
  return GORP_OK;
}
#endif

int backend_select(const char *name) {
  if (!strcmp(name, "cpu")) {
    current = &cpu_ops;
    return GORP_OK;
  }
  if (!strcmp(name, "cuda")) {
#ifdef GORP_HAVE_CUDA
    GORP_CALL(select_cuda(&current));
    return GORP_OK;
#else
    GORP_ERR(GORP_EINPUT, "backend 'cuda' requested but this gorp was built without CUDA");
#endif
  }
  GORP_ERR(GORP_EINPUT, "unknown backend '%s' (expected cpu or cuda)", name);
}

const backend_ops *backend_get(void) {
  return current;
}
