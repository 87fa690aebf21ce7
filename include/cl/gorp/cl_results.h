/* results.h5 of a run directory: the accuracy and in-list matrices with the run's metrics, its
 * loss curves, times and config, rewritten atomically after every evaluation row so that a reader
 * never sees a half-written file. Layout (docs/RESULTS.md): /acc_matrix [T+1, T] float64 percent
 * (row 0 zero-shot, NaN = not measured), /in_list same shape, /loss_curves/task_TT (mtl: /mtl)
 * [steps] float32, root attributes tasks (strings), method, name, order, seed, AP, BWT,
 * FWT, forgetting, gorp_version; /run's attributes config, train_seconds, eval_seconds (what
 * differs between runs with equal results). Predictions live beside it in
 * predictions/after_TT/<dataset>.jsonl. Not for: checkpoints (their /results group is written by
 * ckpt), metrics.jsonl (cl_log.h). */
#ifndef GORP_CL_RESULTS_H
#define GORP_CL_RESULTS_H

#include <stdint.h>

typedef struct cl_results {
  int T;
  char *const *tasks; /* (T) dataset names in training order */
  const char *method;
  const char *name;  /* run.name: the run's label in the tables ("" = the method) */
  const char *order; /* the order as configured (comma-joined task list) */
  uint64_t seed;
  double *acc;     /* (T+1, T) */
  double *in_list; /* (T+1, T) */
  /* The history, for results.h5 only (cl_results_history; absent: n_curves 0). Checkpoints do
   * not hold it: a resume rebuilds it from metrics.jsonl (cl_log_open). */
  const char *config_text; /* the resolved config, as gorp config prints it (NULL: none) */
  int mtl;                 /* 1: one training run on the union of the tasks */
  int n_curves;            /* T, or 1 for mtl */
  float **curves;          /* (n_curves) each (curve_len[i]) losses; NULL until trained */
  int *curve_len;          /* (n_curves) */
  double *train_s;         /* (n_curves) seconds of each curve's steps; NaN until trained */
  double *eval_s;          /* (T+1) seconds of each evaluation row; NaN until evaluated */
} cl_results;

/* Allocates r's history (r->T set; mtl: one curve), every value unmeasured. */
int cl_results_history(cl_results *r, int mtl);
/* Curve i becomes a copy of losses (n), which took `seconds`. */
int cl_results_set_curve(cl_results *r, int i, const float *losses, int n, double seconds);
void cl_results_history_free(cl_results *r);

int cl_results_write(const cl_results *r, const char *path);

#endif
