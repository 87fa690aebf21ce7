/* AP / BWT / FWT / forgetting on hand-built accuracy matrices (values worked out by hand in the
 * comments), including unmeasured cells and a single task. */
#include "gorp/cl_metrics.h"

#include <math.h>
#include <stdio.h>

static int n_pass, n_fail;

static void expect(const char *what, double got, double want) {
  const int ok = (isnan(want) && isnan(got)) || fabs(got - want) < 1e-12;
  printf("%s %-44s got %g, want %g\n", ok ? "PASS" : "FAIL", what, got, want);
  ok ? n_pass++ : n_fail++;
}

int main(void) {
  /* rows: zero-shot, after task 1, 2, 3; columns: tasks 1..3 */
  const double acc[] = {10, 20, 30,  /* z = 10 20 30 */
                        80, 25, NAN, /* a[1,2] = 25 for FWT */
                        70, 90, 35,  /* a[2,3] = 35 */
                        60, 85, 95};
  cl_summary s;
  cl_metrics(&s, acc, 3);
  expect("AP = mean of last row (60+85+95)/3", s.ap, 80.0);
  expect("BWT = ((60-80)+(85-90))/2", s.bwt, -12.5);
  expect("FWT = ((25-20)+(35-30))/2", s.fwt, 5.0);
  expect("forgetting = ((80-60)+(90-85))/2", s.forgetting, 12.5);

  /* macro average: a 10-item task and a 1000-item task weigh the same */
  const double two[] = {0, 0, 100, 0, 50, 100};
  cl_metrics(&s, two, 2);
  expect("AP is the macro mean (50+100)/2", s.ap, 75.0);
  expect("BWT divides by T-1 = 1", s.bwt, -50.0);
  expect("FWT (a[1,2] - z2) = 0 - 0", s.fwt, 0.0);

  const double gap[] = {0, 0, 100, NAN, 50, 100};
  cl_metrics(&s, gap, 2);
  expect("FWT is NaN when a[1,2] was not measured", s.fwt, NAN);
  expect("BWT still defined", s.bwt, -50.0);

  const double one[] = {5, 70};
  cl_metrics(&s, one, 1);
  expect("single task: AP", s.ap, 70.0);
  expect("single task: BWT undefined", s.bwt, NAN);
  printf("%d passed, %d failed\n", n_pass, n_fail);
  return n_fail != 0;
}
