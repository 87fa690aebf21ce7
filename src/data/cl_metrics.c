/* AP, BWT, FWT and forgetting of an accuracy matrix (see cl_metrics.h). */
#include "gorp/cl_metrics.h"

#include <math.h>

#define A(row, col) acc[(row)*T + (col)]

void cl_metrics(cl_summary *s, const double *acc, int T) {
  double ap = 0.0, bwt = 0.0, fwt = 0.0, fg = 0.0;
  for (int i = 0; i < T; i++) ap += A(T, i);
  s->ap = ap / T; /* NaN propagates from any unmeasured cell */
  if (T < 2) {
    s->bwt = s->fwt = s->forgetting = NAN;
    return;
  }
  for (int i = 1; i < T; i++) { /* task i (1-based), column i-1 */
    bwt += A(T, i - 1) - A(i, i - 1);
    double best = NAN;
    for (int k = i; k < T; k++)
      if (!isnan(A(k, i - 1)) && (isnan(best) || A(k, i - 1) > best)) best = A(k, i - 1);
    fg += best - A(T, i - 1);
  }
  for (int i = 2; i <= T; i++) fwt += A(i - 1, i - 1) - A(0, i - 1);
  s->bwt = bwt / (T - 1);
  s->fwt = fwt / (T - 1);
  s->forgetting = fg / (T - 1);
}
