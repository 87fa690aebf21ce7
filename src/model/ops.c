/* The products of the LLaMA ops (see ops.h): every matrix product goes through
 * backend_get()->gemm or, for bf16 operands, bf16.h, and the op returns its status. */
#include "gorp/ops.h"

#include "gorp/backend.h"
#include "gorp/err.h"

/* w.scratch = x (n values, dense) rounded to bf16 by w.dev: the activations' side of a product
 * with a bf16 weight in a device table's memory */
static int dev_round(op_weight w, const float *x, size_t n) {
  GORP_CHECK(n <= w.scratch_n, GORP_EINPUT,
             "a bf16 product needs %zu rounded values; the model's scratch holds %zu", n,
             w.scratch_n);
  return w.dev->bf16_round(w.scratch, x, n);
}

/* out (N, OC) = beta out + inp (N, C) @ w (OC, C)^T */
static int matmul_forward_beta(float *out, const float *inp, op_weight w, int N, int C, int OC,
                               float beta) {
  if (w.dev) {
    GORP_CALL(dev_round(w, inp, (size_t)N * C));
    return w.dev->gemm_bf16(0, 1, N, OC, C, 1.0f, w.scratch, C, w.h, C, beta, out, OC);
  }
  if (w.h) return bf16_gemm_xw(w.cache, 0, 1, N, OC, C, 1.0f, inp, C, w.h, C, beta, out, OC);
  if (w.cache) return bf16_gemm_ff(w.cache, 0, 1, N, OC, C, 1.0f, inp, C, w.f, C, beta, out, OC);
  return backend_get()->gemm(0, 1, N, OC, C, 1.0f, inp, C, w.f, C, beta, out, OC);
}

int matmul_forward(float *out, const float *inp, op_weight w, int N, int C, int OC) {
  return matmul_forward_beta(out, inp, w, N, C, OC, 0.0f);
}

int matmul_forward_add(float *out, const float *inp, op_weight w, int N, int C, int OC) {
  return matmul_forward_beta(out, inp, w, N, C, OC, 1.0f);
}

/* dinp (N, C) = beta_dinp * dinp + dout @ w ; dw (OC, C) += dout^T @ inp ; either may be NULL */
static int matmul_backward_beta(float *dinp, float *dw, const float *dout, const float *inp,
                                op_weight w, int N, int C, int OC, float beta_dinp) {
  const backend_ops *be = backend_get();
  if (dw && w.h) GORP_ERR(GORP_EINPUT, "matmul_backward: a bf16 weight has no gradient (frozen)");
  if (dinp && w.dev) {
    GORP_CALL(dev_round(w, dout, (size_t)N * OC));
    GORP_CALL(w.dev->gemm_bf16(0, 0, N, C, OC, 1.0f, w.scratch, OC, w.h, C, beta_dinp, dinp, C));
  } else if (dinp && w.h)
    GORP_CALL(bf16_gemm_xw(w.cache, 0, 0, N, C, OC, 1.0f, dout, OC, w.h, C, beta_dinp, dinp, C));
  else if (dinp && w.cache)
    GORP_CALL(bf16_gemm_ff(w.cache, 0, 0, N, C, OC, 1.0f, dout, OC, w.f, C, beta_dinp, dinp, C));
  else if (dinp)
    GORP_CALL(be->gemm(0, 0, N, C, OC, 1.0f, dout, OC, w.f, C, beta_dinp, dinp, C));
  if (dw && w.cache)
    GORP_CALL(bf16_gemm_ff(w.cache, 1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C));
  else if (dw)
    GORP_CALL(be->gemm(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C));
  return GORP_OK;
}

int matmul_backward_set(float *dinp, float *dw, const float *dout, const float *inp, op_weight w,
                        int N, int C, int OC) {
  return matmul_backward_beta(dinp, dw, dout, inp, w, N, C, OC, 0.0f);
}

int matmul_backward(float *dinp, float *dw, const float *dout, const float *inp, op_weight w, int N,
                    int C, int OC) {
  return matmul_backward_beta(dinp, dw, dout, inp, w, N, C, OC, 1.0f);
}
