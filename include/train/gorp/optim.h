/* Optimizers over flat parameter/gradient arrays: AdamW exactly as torch.optim.AdamW computes it,
 * and gradient clipping by global norm as torch.nn.utils.clip_grad_norm_.
 * Not for: choosing which tensors train (the runner passes the arrays). */
#ifndef GORP_OPTIM_H
#define GORP_OPTIM_H

#include "gorp/backend.h"

#include <stddef.h>

typedef struct adamw {
  float lr, beta1, beta2, eps, weight_decay;
  size_t n;  /* number of parameters it updates */
  float *m;  /* (n) first moment */
  float *v;  /* (n) second moment */
  long step; /* steps taken */
  /* the ops table of the memory the parameters, and so the moments, live in (the model's
   * model.ops): the moments are its allocation and the update its adamw_update */
  const backend_ops *ops;
} adamw;

/* Moments of n parameters in ops's memory, zero. */
int adamw_init(adamw *o, const backend_ops *ops, size_t n, float lr, float beta1, float beta2,
               float eps, float weight_decay);
void adamw_free(adamw *o);
/* One step: decoupled weight decay, moments, bias-corrected update of params (n). */
GORP_WUR int adamw_step(adamw *o, float *params, const float *grads);

/* A gradient array; clipping treats several as one vector. */
typedef struct grad_segment {
  float *g;
  size_t n;
} grad_segment;

/* Scales the gradients of every segment so that their global L2 norm is at most max_norm
 * (torch's 1e-6 guard included); returns the norm before clipping. max_norm <= 0 only measures. */
double grad_clip_norm(const grad_segment *segs, int n_segs, float max_norm);
/* The two halves of grad_clip_norm, for gradients spread over ranks: the sum of squares of the
 * segments, and the scaling given the global norm. */
double grad_sumsq(const grad_segment *segs, int n_segs);
void grad_clip_scale(const grad_segment *segs, int n_segs, float max_norm, double norm);
/* The factor grad_clip_scale multiplies by: max_norm / (norm + 1e-6) when that is below 1 (and
 * max_norm > 0), else 1. */
float grad_clip_coef(float max_norm, double norm);

#endif
