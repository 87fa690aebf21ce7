/* results.h5 of a run directory: the accuracy and in-list matrices with the run's metrics,
 * rewritten atomically after every evaluation row so that a reader never sees a half-written file.
 * Layout (docs/RESULTS.md): /acc_matrix [T+1, T] float64 percent (row 0 zero-shot, NaN = not
 * measured), /in_list same shape, root attributes tasks (strings), method, order, seed, AP, BWT,
 * FWT, forgetting, gorp_version. Predictions live beside it in
 * predictions/after_TT/<dataset>.jsonl. Not for: checkpoints (their /results group is written by
 * ckpt). */
#ifndef GORP_CL_RESULTS_H
#define GORP_CL_RESULTS_H

#include <stdint.h>

typedef struct cl_results {
  int T;
  char *const *tasks; /* (T) dataset names in training order */
  const char *method;
  const char *order; /* the order as configured (comma-joined task list) */
  uint64_t seed;
  double *acc;     /* (T+1, T) */
  double *in_list; /* (T+1, T) */
} cl_results;

int cl_results_write(const cl_results *r, const char *path);

#endif
