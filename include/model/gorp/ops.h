/* The LLaMA layer ops: the weights' products here (a forward/backward pair, llm.c style: outputs
 * first, shapes in comments, backward accumulates (+=) into the weight gradient), through the
 * backend table (bf16 weights through bf16.h); the element-wise ops and attention come with
 * kernels.h. Single rank; activations and gradients fp32.
 * The ops that make matrix products return the backend's status (GORP_OK or a GORP_E* code; the
 * CUDA backend fails instead of aborting), which the compiler makes every caller use.
 * Not for: orchestration of a whole model (model.c) or decoding (model_generate.c). */
#ifndef GORP_OPS_H
#define GORP_OPS_H

#include "gorp/kernels.h"

/* out (N, OC) = inp (N, C) @ w (OC, C)^T */
GORP_WUR int matmul_forward(float *out, const float *inp, op_weight w, int N, int C, int OC);
/* out (N, OC) += inp (N, C) @ w (OC, C)^T  (a linear whose output joins the residual stream) */
GORP_WUR int matmul_forward_add(float *out, const float *inp, op_weight w, int N, int C, int OC);
/* dinp (N, C) += dout @ w ; dw (OC, C) += dout^T @ inp ; either may be NULL to skip (dw must be
 * NULL for a bf16 w: bf16 weights are frozen; with an fp32 w that carries a cache, dw's product
 * rounds dout and inp to bf16) */
GORP_WUR int matmul_backward(float *dinp, float *dw, const float *dout, const float *inp,
                             op_weight w, int N, int C, int OC);
/* the same with dinp (N, C) = dout @ w overwritten (no need to zero it first) */
GORP_WUR int matmul_backward_set(float *dinp, float *dw, const float *dout, const float *inp,
                                 op_weight w, int N, int C, int OC);

#endif
