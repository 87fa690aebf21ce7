/* bf16 conversions and the bf16 x bf16 -> fp32 product (bf16.h): oneDNN matmul primitives cached
 * per shape, and the fallback through backend.h's gemm.
 * Not for: the fp32 products (backend_cpu.c), choosing where bf16 is used (the model), or oneDNN's
 * other primitives. */
#include "gorp/bf16.h"

#include "gorp/backend.h"
#include "gorp/err.h"

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <stdio.h>
#include <stdlib.h>

/* Conversions below this many elements stay on the calling thread (waking the pool costs more). */
enum { PAR_MIN = 1 << 16 };
/* The fallback widens the weight about this many floats (16 MB) at a time. */
enum { WIDE_BLOCK = 1 << 22 };

/* Primitives kept per cache. A model has a few dozen shapes (7 linear maps per layer, forward and
 * backward, the LM head); beyond this the least recently used one is destroyed. */
enum { CACHE_MAX = 64 };

void bf16_round(bf16 *out, const float *in, size_t n) {
#pragma omp parallel for simd if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++) out[i] = bf16_from_f32(in[i]);
}

void bf16_widen(float *out, const bf16 *in, size_t n) {
#pragma omp parallel for simd if (n >= PAR_MIN)
  for (size_t i = 0; i < n; i++) out[i] = bf16_to_f32(in[i]);
}

/* dst (rows, cols) dense = src (rows, cols) with leading dimension ld, rounded to bf16. */
static void pack_round(bf16 *dst, const float *src, int rows, int cols, int ld) {
  if (ld == cols) {
    bf16_round(dst, src, (size_t)rows * cols);
    return;
  }
#pragma omp parallel for if ((size_t)rows * cols >= PAR_MIN)
  for (int r = 0; r < rows; r++)
#pragma omp simd
    for (int j = 0; j < cols; j++)
      dst[(size_t)r * cols + j] = bf16_from_f32(src[(size_t)r * ld + j]);
}

/* dst (rows, cols) dense = src (rows, cols) with leading dimension ld, rounded through bf16 (the
 * fallback multiplies the values the oneDNN path multiplies). */
static void pack_round_f32(float *dst, const float *src, int rows, int cols, int ld) {
#pragma omp parallel for if ((size_t)rows * cols >= PAR_MIN)
  for (int r = 0; r < rows; r++)
#pragma omp simd
    for (int j = 0; j < cols; j++)
      dst[(size_t)r * cols + j] = bf16_to_f32(bf16_from_f32(src[(size_t)r * ld + j]));
}

/* dst (rows, cols) dense = src (rows, cols) with leading dimension ld, widened. */
static void pack_widen(float *dst, const bf16 *src, int rows, int cols, int ld) {
  if (ld == cols) {
    bf16_widen(dst, src, (size_t)rows * cols);
    return;
  }
#pragma omp parallel for if ((size_t)rows * cols >= PAR_MIN)
  for (int r = 0; r < rows; r++)
#pragma omp simd
    for (int j = 0; j < cols; j++) dst[(size_t)r * cols + j] = bf16_to_f32(src[(size_t)r * ld + j]);
}

/* What makes one primitive: both operands bf16 as the primitive sees them (the converted one
 * dense), C fp32. Only 4-byte fields, so memcmp compares it. */
typedef struct gemm_key {
  int trans_a, trans_b, m, n, k, lda, ldb, ldc;
  float alpha, beta;
} gemm_key;

typedef struct gemm_prim {
  gemm_key key;
  dnnl_primitive_t prim;
  dnnl_memory_t mem[3]; /* op(A) (m, k), op(B) (k, n), C (m, n); data handles set per call */
  char kernel[64];      /* oneDNN's implementation name, e.g. brg:avx512_core_bf16 */
  long last_use;
} gemm_prim;

struct bf16_gemm_cache {
  bf16_path path; /* BF16_PATH_ONEDNN, BF16_PATH_SGEMM or BF16_PATH_SPLIT */
  dnnl_engine_t engine;
  dnnl_stream_t stream;
  gemm_prim prims[CACHE_MAX];
  int n_prims;
  long clock, n_created;
  const char *kernel; /* of the last call */
  bf16 *packed;       /* the fp32 operand rounded to bf16 (oneDNN path) */
  size_t packed_cap;
  bf16 *packed_b; /* bf16_gemm_ff's B rounded to bf16 (a trained weight or activations) */
  size_t packed_b_cap;
  float *wide; /* both operands in fp32 (fallback) */
  size_t wide_cap;
};

static int dnnl_check(dnnl_status_t st, const char *call, int line, const char *func) {
  if (st == dnnl_success) return GORP_OK;
  return gorp_error(__FILE__, line, func, GORP_ELIB, "oneDNN call failed (%s): %s",
                    dnnl_status2str(st), call);
}
#define DNNL_OK(call) dnnl_check((call), #call, __LINE__, __func__)
/* for functions that clean up at `done` with their status in rc */
#define DNNL_TRY(call)                                                                             \
  do {                                                                                             \
    if ((rc = DNNL_OK(call)) != GORP_OK) goto done;                                                \
  } while (0)

int bf16_gemm_create(bf16_gemm_cache **cache, bf16_path path) {
  *cache = NULL;
  GORP_CHECK(path >= BF16_PATH_AUTO && path <= BF16_PATH_SPLIT, GORP_EINPUT,
             "unknown bf16 GEMM path %d (expected auto, onednn, sgemm or split)", (int)path);
  if (path == BF16_PATH_AUTO) {
    /* the ISA bits nest: AMX's value contains AVX512-BF16's */
    const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    path = (isa & dnnl_cpu_isa_avx512_core_amx) == dnnl_cpu_isa_avx512_core_amx ? BF16_PATH_ONEDNN
           : (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16
               ? BF16_PATH_SPLIT
               : BF16_PATH_SGEMM;
  }
  bf16_gemm_cache *c;
  GORP_ALLOC(c, 1, "the bf16 GEMM cache");
  c->path = path;
  c->kernel = "";
  int rc = GORP_OK;
  if (path != BF16_PATH_SGEMM) {
    DNNL_TRY(dnnl_engine_create(&c->engine, dnnl_cpu, 0));
    DNNL_TRY(dnnl_stream_create(&c->stream, c->engine, dnnl_stream_default_flags));
  }
done:
  if (rc)
    bf16_gemm_free(c);
  else
    *cache = c;
  return rc;
}

static void prim_destroy(gemm_prim *e) {
  for (int i = 0; i < 3; i++)
    if (e->mem[i]) dnnl_memory_destroy(e->mem[i]);
  if (e->prim) dnnl_primitive_destroy(e->prim);
  *e = (gemm_prim){0};
}

void bf16_gemm_free(bf16_gemm_cache *c) {
  if (!c) return;
  for (int i = 0; i < c->n_prims; i++) prim_destroy(&c->prims[i]);
  if (c->stream) dnnl_stream_destroy(c->stream);
  if (c->engine) dnnl_engine_destroy(c->engine);
  free(c->packed);
  free(c->packed_b);
  free(c->wide);
  free(c);
}

bf16_path bf16_gemm_path(const bf16_gemm_cache *c) {
  return c->path;
}

_Static_assert(BF16_SPLIT_ROWS == 64, "bf16_path_name says 64");
const char *bf16_path_name(bf16_path path) {
  switch (path) {
  case BF16_PATH_ONEDNN:
    return "oneDNN";
  case BF16_PATH_SGEMM:
    return "the sgemm fallback";
  case BF16_PATH_SPLIT:
    return "oneDNN below 64 rows, the sgemm fallback from 64";
  default:
    return "auto";
  }
}

long bf16_gemm_n_created(const bf16_gemm_cache *c) {
  return c->n_created;
}

const char *bf16_gemm_kernel(const bf16_gemm_cache *c) {
  return c->kernel;
}

/* e: a new primitive for key (e zeroed; left zeroed on failure). Row-major operands are strided
 * memory descriptors, a transposed one with its strides swapped, so no operand is copied. */
static int prim_create(bf16_gemm_cache *c, const gemm_key *key, gemm_prim *e) {
  int rc = GORP_OK;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t po = NULL;
  dnnl_primitive_desc_t pd = NULL;
  const dnnl_dims_t a_dims = {key->m, key->k}, b_dims = {key->k, key->n}, c_dims = {key->m, key->n};
  const dnnl_dims_t a_str = {key->trans_a ? 1 : key->lda, key->trans_a ? key->lda : 1},
                    b_str = {key->trans_b ? 1 : key->ldb, key->trans_b ? key->ldb : 1},
                    c_str = {key->ldc, 1};
  dnnl_memory_desc_t md[3];
  DNNL_TRY(dnnl_memory_desc_init_by_strides(&md[0], 2, a_dims, dnnl_bf16, a_str));
  DNNL_TRY(dnnl_memory_desc_init_by_strides(&md[1], 2, b_dims, dnnl_bf16, b_str));
  DNNL_TRY(dnnl_memory_desc_init_by_strides(&md[2], 2, c_dims, dnnl_f32, c_str));
  dnnl_matmul_desc_t desc;
  DNNL_TRY(dnnl_matmul_desc_init(&desc, &md[0], &md[1], NULL, &md[2]));
  DNNL_TRY(dnnl_primitive_attr_create(&attr));
  /* oneDNN: C = output_scale * (A B), then the sum post-op adds beta * C's old value */
  if (key->alpha != 1.0f) DNNL_TRY(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &key->alpha));
  if (key->beta != 0.0f) {
    DNNL_TRY(dnnl_post_ops_create(&po));
    DNNL_TRY(dnnl_post_ops_append_sum(po, key->beta));
    DNNL_TRY(dnnl_primitive_attr_set_post_ops(attr, po));
  }
  DNNL_TRY(dnnl_primitive_desc_create(&pd, &desc, attr, c->engine, NULL));
  const char *impl = "";
  DNNL_TRY(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl));
  snprintf(e->kernel, sizeof(e->kernel), "%s", impl);
  DNNL_TRY(dnnl_primitive_create(&e->prim, pd));
  for (int i = 0; i < 3; i++)
    DNNL_TRY(dnnl_memory_create(&e->mem[i], &md[i], c->engine, DNNL_MEMORY_NONE));
  e->key = *key;
  c->n_created++;
done:
  if (pd) dnnl_primitive_desc_destroy(pd);
  if (po) dnnl_post_ops_destroy(po);
  if (attr) dnnl_primitive_attr_destroy(attr);
  if (rc) prim_destroy(e);
  return rc;
}

/* *out: the cached primitive for key, created (in place of the least recently used one when the
 * cache is full) on first use. */
static int prim_get(bf16_gemm_cache *c, const gemm_key *key, gemm_prim **out) {
  int slot = -1;
  for (int i = 0; i < c->n_prims && slot < 0; i++)
    if (!memcmp(&c->prims[i].key, key, sizeof(*key))) slot = i;
  if (slot < 0) {
    if (c->n_prims < CACHE_MAX) {
      slot = c->n_prims++;
    } else {
      slot = 0;
      for (int i = 1; i < CACHE_MAX; i++)
        if (c->prims[i].last_use < c->prims[slot].last_use) slot = i;
      prim_destroy(&c->prims[slot]);
    }
    const int rc = prim_create(c, key, &c->prims[slot]);
    if (rc) { /* keep the table dense: the last entry fills the failed slot */
      c->prims[slot] = c->prims[--c->n_prims];
      c->prims[c->n_prims] = (gemm_prim){0};
      return rc;
    }
  }
  c->prims[slot].last_use = ++c->clock;
  *out = &c->prims[slot];
  return GORP_OK;
}

/* Grows *buf to hold n elements of size sz (scratch: the old contents are not kept). */
static int scratch_reserve(void **buf, size_t *cap, size_t n, size_t sz) {
  if (n <= *cap) return GORP_OK;
  free(*buf);
  *buf = malloc(n * sz);
  *cap = *buf ? n : 0;
  GORP_CHECK(*buf, GORP_EMEM, "out of memory allocating %zu bytes for the bf16 GEMM scratch",
             n * sz);
  return GORP_OK;
}

/* The fallback's product: the fp32 operand rounded through bf16 into a dense scratch, then the
 * weight widened to fp32 a block of C's columns (weight B) or rows (weight A) at a time, each
 * block one backend.h gemm, so that the scratch stays at WIDE_BLOCK floats however large the
 * weight (a whole LLaMA-2-7B head would be 0.5 GB). Every element of C is still one sum over the
 * whole k. */
static int gemm_widened(bf16_gemm_cache *c, int trans_a, int trans_b, int m, int n, int k,
                        float alpha, const float *a32, const bf16 *a16, int lda, const float *b32,
                        const bf16 *b16, int ldb, float beta, float *cm, int ldc) {
  const int a_rows = trans_a ? k : m, a_cols = trans_a ? m : k;
  const int b_rows = trans_b ? n : k, b_cols = trans_b ? k : n;
  const int wide = b16 ? n : m; /* C's columns (weight B) or rows (weight A), cut in blocks */
  int block = WIDE_BLOCK / k / 64 * 64;
  block = block < 128 ? 128 : block > wide ? wide : block;
  const size_t nx = b16 ? (size_t)a_rows * a_cols : (size_t)b_rows * b_cols;
  GORP_CALL(
      scratch_reserve((void **)&c->wide, &c->wide_cap, nx + (size_t)block * k, sizeof(float)));
  float *x = c->wide, *w = c->wide + nx; /* the activations (dense), one block of the weight */
  if (b16)
    pack_round_f32(x, a32, a_rows, a_cols, lda);
  else
    pack_round_f32(x, b32, b_rows, b_cols, ldb);
  c->kernel = "sgemm";
  for (int j0 = 0; j0 < wide; j0 += block) {
    const int nb = wide - j0 < block ? wide - j0 : block;
    if (b16) {     /* C[:, j0:j0+nb] = op(A) op(B)[:, j0:j0+nb] */
      if (trans_b) /* B (n, k): rows j0.. */
        pack_widen(w, b16 + (size_t)j0 * ldb, nb, k, ldb);
      else /* B (k, n): columns j0.. */
        pack_widen(w, b16 + j0, k, nb, ldb);
      GORP_CALL(backend_get()->gemm(trans_a, trans_b, m, nb, k, alpha, x, a_cols, w,
                                    trans_b ? k : nb, beta, cm + j0, ldc));
    } else {       /* C[j0:j0+nb, :] = op(A)[j0:j0+nb, :] op(B) */
      if (trans_a) /* A (k, m): columns j0.. */
        pack_widen(w, a16 + j0, k, nb, lda);
      else /* A (m, k): rows j0.. */
        pack_widen(w, a16 + (size_t)j0 * lda, nb, k, lda);
      GORP_CALL(backend_get()->gemm(trans_a, trans_b, nb, n, k, alpha, w, trans_a ? nb : k, x,
                                    b_cols, beta, cm + (size_t)j0 * ldc, ldc));
    }
  }
  return GORP_OK;
}

/* The product with each operand given either in fp32 (x32) or in bf16 (x16), the other NULL. */
static int gemm_mixed(bf16_gemm_cache *c, int trans_a, int trans_b, int m, int n, int k,
                      float alpha, const float *a32, const bf16 *a16, int lda, const float *b32,
                      const bf16 *b16, int ldb, float beta, float *cm, int ldc) {
  /* the operands as stored: A (a_rows, a_cols), B (b_rows, b_cols) */
  const int a_rows = trans_a ? k : m, a_cols = trans_a ? m : k;
  const int b_rows = trans_b ? n : k, b_cols = trans_b ? k : n;
  GORP_CHECK(m >= 0 && n >= 0 && k >= 0 && lda >= (a_cols > 1 ? a_cols : 1) &&
                 ldb >= (b_cols > 1 ? b_cols : 1) && ldc >= (n > 1 ? n : 1),
             GORP_EINPUT,
             "bf16 GEMM: bad shape m=%d n=%d k=%d (trans_a %d, trans_b %d) with lda=%d ldb=%d "
             "ldc=%d (expected sizes >= 0 and each leading dimension >= its row length)",
             m, n, k, trans_a, trans_b, lda, ldb, ldc);
  if (m == 0 || n == 0) return GORP_OK;
  if (k == 0) { /* nothing to multiply: C = beta C, or zeros (the BLAS convention) */
    for (int i = 0; i < m; i++)
      for (int j = 0; j < n; j++)
        cm[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * cm[(size_t)i * ldc + j];
    return GORP_OK;
  }
  /* the activations' rows: the weight is B (xw) or A (wx) */
  const int rows = b16 ? m : n;
  if (c->path == BF16_PATH_SGEMM || (c->path == BF16_PATH_SPLIT && rows >= BF16_SPLIT_ROWS))
    return gemm_widened(c, trans_a, trans_b, m, n, k, alpha, a32, a16, lda, b32, b16, ldb, beta, cm,
                        ldc);
  /* oneDNN: the fp32 operand rounded into the dense scratch, the bf16 one used in place */
  const bf16 *a = a16, *b = b16;
  if (a32) {
    GORP_CALL(scratch_reserve((void **)&c->packed, &c->packed_cap, (size_t)a_rows * a_cols,
                              sizeof(bf16)));
    pack_round(c->packed, a32, a_rows, a_cols, lda);
    a = c->packed;
    lda = a_cols;
  } else {
    GORP_CALL(scratch_reserve((void **)&c->packed, &c->packed_cap, (size_t)b_rows * b_cols,
                              sizeof(bf16)));
    pack_round(c->packed, b32, b_rows, b_cols, ldb);
    b = c->packed;
    ldb = b_cols;
  }
  const gemm_key key = {trans_a, trans_b, m,   n,     k,
                        lda,     ldb,     ldc, alpha, beta == 0.0f ? 0.0f : beta};
  gemm_prim *e;
  GORP_CALL(prim_get(c, &key, &e));
  c->kernel = e->kernel;
  GORP_CALL(DNNL_OK(dnnl_memory_set_data_handle(e->mem[0], (void *)a)));
  GORP_CALL(DNNL_OK(dnnl_memory_set_data_handle(e->mem[1], (void *)b)));
  GORP_CALL(DNNL_OK(dnnl_memory_set_data_handle(e->mem[2], cm)));
  const dnnl_exec_arg_t args[3] = {
      {DNNL_ARG_SRC, e->mem[0]}, {DNNL_ARG_WEIGHTS, e->mem[1]}, {DNNL_ARG_DST, e->mem[2]}};
  GORP_CALL(DNNL_OK(dnnl_primitive_execute(e->prim, c->stream, 3, args)));
  GORP_CALL(DNNL_OK(dnnl_stream_wait(c->stream)));
  return GORP_OK;
}

int bf16_gemm_xw(bf16_gemm_cache *c, int trans_a, int trans_b, int m, int n, int k, float alpha,
                 const float *a, int lda, const bf16 *b, int ldb, float beta, float *cm, int ldc) {
  return gemm_mixed(c, trans_a, trans_b, m, n, k, alpha, a, NULL, lda, NULL, b, ldb, beta, cm, ldc);
}

int bf16_gemm_wx(bf16_gemm_cache *c, int trans_a, int trans_b, int m, int n, int k, float alpha,
                 const bf16 *a, int lda, const float *b, int ldb, float beta, float *cm, int ldc) {
  return gemm_mixed(c, trans_a, trans_b, m, n, k, alpha, NULL, a, lda, b, NULL, ldb, beta, cm, ldc);
}

int bf16_gemm_ff(bf16_gemm_cache *c, int trans_a, int trans_b, int m, int n, int k, float alpha,
                 const float *a, int lda, const float *b, int ldb, float beta, float *cm, int ldc) {
  /* B rounded whole into its own scratch, then the mixed product rounds A as for a bf16 weight;
   * a bad shape or an empty product is left to gemm_mixed's check and early returns, which never
   * read B (so it is rounded only when the product is real) */
  const int b_rows = trans_b ? n : k, b_cols = trans_b ? k : n;
  const bf16 *b16 = NULL;
  if (m > 0 && n > 0 && k > 0 && ldb >= b_cols) {
    GORP_CALL(scratch_reserve((void **)&c->packed_b, &c->packed_b_cap, (size_t)b_rows * b_cols,
                              sizeof(bf16)));
    pack_round(c->packed_b, b, b_rows, b_cols, ldb);
    b16 = c->packed_b;
  }
  return gemm_mixed(c, trans_a, trans_b, m, n, k, alpha, a, NULL, lda, NULL, b16,
                    b16 ? b_cols : ldb, beta, cm, ldc);
}
