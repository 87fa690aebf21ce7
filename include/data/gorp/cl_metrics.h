/* Continual-learning metrics over an accuracy matrix, as the O-LoRA/N-LoRA/GORP papers define
 * them (docs/RESULTS.md).
 * acc is (T+1, T) row-major in percent: row 0 = the base model's zero-shot accuracy, row j = after
 * training task j (1-based), column i = task i+1; NaN = not measured.
 *   AP         = mean_i a[T, i]                       (macro: every task weighs the same)
 *   BWT        = 1/(T-1) sum_{i<T} (a[T, i] - a[i, i])
 *   FWT        = 1/(T-1) sum_{i>=2} (a[i-1, i] - a[0, i])
 *   forgetting = 1/(T-1) sum_{i<T} (max_{i<=k<T} a[k, i] - a[T, i])
 * (forgetting takes the best accuracy a task had after it was learned, Chaudhry et al. 2018.)
 * A metric whose terms are not all measured, or that needs T >= 2, is NaN.
 * Not for: pooled (item-weighted) averages, which the papers do not report. */
#ifndef GORP_CL_METRICS_H
#define GORP_CL_METRICS_H

typedef struct cl_summary {
  double ap, bwt, fwt, forgetting;
} cl_summary;

void cl_metrics(cl_summary *s, const double *acc, int T);

#endif
