/* AdamW and global-norm clipping with torch's formulas and operation order, so that a run can be
 * compared step by step with torch.optim.AdamW (tests/ref/test_adamw_trajectory.py). */
#include "gorp/optim.h"

#include "gorp/err.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>

int adamw_init(adamw *o, const backend_ops *ops, size_t n, float lr, float beta1, float beta2,
               float eps, float weight_decay) {
  *o = (adamw){.lr = lr,
               .beta1 = beta1,
               .beta2 = beta2,
               .eps = eps,
               .weight_decay = weight_decay,
               .n = n,
               .ops = ops};
  void *state;
  GORP_CALL(ops->alloc(&state, 2 * n * sizeof(float))); /* zeroed */
  o->m = state;
  o->v = o->m + n;
  return GORP_OK;
}

void adamw_free(adamw *o) {
  if (o->m) o->ops->free(o->m); /* m and v share one allocation */
  o->m = o->v = NULL;
}

int adamw_step(adamw *o, float *params, const float *grads) {
  o->step++;
  return o->ops->adamw_update(params, o->m, o->v, grads, o->n,
                              (adamw_hyper){.lr = o->lr,
                                            .beta1 = o->beta1,
                                            .beta2 = o->beta2,
                                            .eps = o->eps,
                                            .weight_decay = o->weight_decay,
                                            .step = o->step});
}

double grad_sumsq(const grad_segment *segs, int n_segs) {
  double ss = 0.0;
#pragma omp parallel
  {
    const int nt = omp_get_num_threads(), t = omp_get_thread_num();
    double part = 0.0;
    for (int k = 0; k < n_segs; k++) {
      const float *g = segs[k].g;
      const size_t lo = segs[k].n * t / nt, hi = segs[k].n * (t + 1) / nt;
#pragma omp simd reduction(+ : part)
      for (size_t i = lo; i < hi; i++) part += (double)g[i] * g[i];
    }
    /* partial sums joined in thread order: deterministic for a given thread count */
    for (int j = 0; j < nt; j++) {
#pragma omp barrier
      if (j == t) ss += part;
    }
  }
  return ss;
}

float grad_clip_coef(float max_norm, double norm) {
  const double coef = max_norm > 0 ? max_norm / (norm + 1e-6) : 1.0;
  return coef < 1.0 ? (float)coef : 1.0f;
}

void grad_clip_scale(const grad_segment *segs, int n_segs, float max_norm, double norm) {
  const float coef = grad_clip_coef(max_norm, norm);
  if (coef < 1.0f)
    for (int k = 0; k < n_segs; k++) {
      float *g = segs[k].g;
#pragma omp parallel for simd schedule(static)
      for (size_t i = 0; i < segs[k].n; i++) g[i] *= coef;
    }
}

double grad_clip_norm(const grad_segment *segs, int n_segs, float max_norm) {
  const double norm = sqrt(grad_sumsq(segs, n_segs));
  grad_clip_scale(segs, n_segs, max_norm, norm);
  return norm;
}
