/* gorp plan's time estimate: training steps and evaluated prompts of every task of a config,
 * counted from its data the way gorp run counts them, turned into seconds at a throughput given
 * (--gflops) or measured here (--measure: the backend's GEMM on the plan's widest linear).
 * Not for: the memory and FLOP arithmetic (plan.h), printing (cmd_plan.c). */
#ifndef GORP_PLAN_TIME_H
#define GORP_PLAN_TIME_H

#include "gorp/plan.h"

struct gorp_config;

typedef struct plan_time_task {
  const char *name;    /* the config's dataset name */
  int examples, steps; /* training examples after data.max_train_per_task; optimizer steps */
  int test;            /* test prompts after data.max_test_per_task */
  int rows;            /* accuracy-matrix rows that evaluate this task */
  double train_s, eval_s;
} plan_time_task;

typedef struct plan_time {
  double gflops;   /* sustained GFLOP/s per rank the estimate assumes */
  int measured;    /* 1: gflops comes from plan_time_measure */
  int prompt_ids;  /* the prompt length assumed for evaluation: data.max_source_length */
  double step_s;   /* one training step */
  double prompt_s; /* one test prompt (prefill + eval.max_new_tokens ids) */
  int n_tasks;
  plan_time_task *task; /* n_tasks */
  double train_s, eval_s;
  long long prompts; /* evaluated per rank over the run */
} plan_time;

/* GFLOP/s of the backend's GEMM on this rank's threads, timed on the plan's widest linear for
 * min_s seconds at least (a few rounds): what --measure reports. */
int plan_time_measure(double *gflops, const plan *p, double min_s);
/* Loads every task of c (data.root, or the synthetic suite) to count examples and test items,
 * then fills t at gflops GFLOP/s per rank. Free with plan_time_free. */
int plan_time_compute(plan_time *t, const plan *p, const struct gorp_config *c, double gflops);
void plan_time_free(plan_time *t);

#endif
