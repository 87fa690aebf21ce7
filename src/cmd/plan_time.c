/* gorp plan's time estimate (plan_time.h): a run's training steps and evaluated prompts, counted
 * from its data as gorp run counts them (data.max_train_per_task, train.per_task, train.max_steps,
 * data.max_test_per_task, the rows that evaluate each task), at a throughput in GFLOP/s per rank.
 * FLOP-bound: decoding a small batch is bound by memory bandwidth and runs slower than this says.
 * Not for: memory (plan.c), printing (cmd_plan.c). */
#include "gorp/plan_time.h"

#include "gorp/backend.h"
#include "gorp/cl.h"
#include "gorp/clbench.h"
#include "gorp/config.h"
#include "gorp/err.h"
#include "gorp/proc.h"

#include <stdlib.h>
#include <string.h>

int plan_time_measure(double *gflops, const plan *p, double min_s) {
  /* the MLP's up projection of up to 1024 tokens: (M x C) x (F' x C)^T, the step's widest GEMM */
  const int C = p->cfg.hidden_size, F = p->cfg.intermediate_size / p->layout.tp;
  const int tokens = p->batch_local * p->layout.seq, M = tokens < 1024 ? tokens : 1024;
  float *x, *w, *y;
  GORP_ALLOC(x, (size_t)M * C, "--measure input");
  w = malloc((size_t)F * C * sizeof(float));
  y = malloc((size_t)M * F * sizeof(float));
  int rc = !w || !y ? GORP_ERROR(GORP_EMEM, "out of memory for --measure's GEMM") : GORP_OK;
  for (size_t i = 0; !rc && i < (size_t)M * C; i++) x[i] = (float)(i % 7) * 0.125f;
  for (size_t i = 0; !rc && i < (size_t)F * C; i++) w[i] = (float)(i % 5) * 0.25f;
  const backend_ops *be = backend_get();
  double t0 = proc_now_s(), dt = 0.0;
  long rounds = 0;
  while (!rc && (rounds < 3 || dt < min_s)) { /* the first round warms caches and threads */
    rc = be->gemm(0, 1, M, F, C, 1.0f, x, C, w, C, 0.0f, y, F);
    if (++rounds == 1) t0 = proc_now_s();
    dt = proc_now_s() - t0;
  }
  free(x);
  free(w);
  free(y);
  GORP_CALL(rc);
  *gflops = 2.0 * M * F * C * (double)(rounds - 1) / dt / 1e9;
  return GORP_OK;
}

/* Rows of the accuracy matrix that evaluate task i of T: the zero-shot row, then (sequential
 * methods) the row after task j for every j with i <= j + 1; mtl: its one last row. */
static int rows_evaluating(int i, int T, int mtl) {
  if (mtl) return 2;
  const int first = i > 0 ? i - 1 : 0; /* row j + 1 evaluates tasks 0..j+1 */
  return 1 + (T - first);
}

int plan_time_compute(plan_time *t, const plan *p, const gorp_config *c, double gflops) {
  memset(t, 0, sizeof(*t));
  GORP_CHECK(gflops > 0, GORP_EUSAGE, "--gflops must be positive, got %g", gflops);
  const int T = c->data.n_tasks, mtl = !strcmp(c->run.method, "mtl"), dp = p->layout.dp;
  t->gflops = gflops;
  t->n_tasks = T;
  t->prompt_ids = c->data.max_source_length;
  t->step_s = p->flops_step / (gflops * 1e9);
  t->prompt_s = plan_prompt_flops(p, t->prompt_ids, c->eval.max_new_tokens) / (gflops * 1e9);
  GORP_ALLOC(t->task, T, "plan time per task");
  cl_task *tasks;
  GORP_CALL(cl_load_tasks(c, 0, &tasks));
  int all_examples = 0;
  for (int i = 0; i < T; i++) {
    plan_time_task *pt = &t->task[i];
    pt->name = c->data.tasks[i];
    pt->examples = tasks[i].n_train;
    if (c->data.max_train_per_task > 0 && c->data.max_train_per_task < pt->examples)
      pt->examples = c->data.max_train_per_task;
    pt->test = tasks[i].n_test;
    if (c->data.max_test_per_task > 0 && c->data.max_test_per_task < pt->test)
      pt->test = c->data.max_test_per_task;
    all_examples += pt->examples;
    task_train tt;
    config_task_train(c, pt->name, &tt);
    int rc = mtl ? GORP_OK : cl_steps_for(&tt, pt->examples, pt->name, &pt->steps);
    clbench_free(&tasks[i]);
    if (rc) {
      for (int j = i + 1; j < T; j++) clbench_free(&tasks[j]);
      free(tasks);
      return rc;
    }
    pt->rows = rows_evaluating(i, T, mtl);
    pt->train_s = pt->steps * t->step_s;
    const int share = (pt->test + dp - 1) / dp; /* a rank's share of the test set */
    pt->eval_s = (double)pt->rows * share * t->prompt_s;
    t->prompts += (long long)pt->rows * share;
    t->train_s += pt->train_s;
    t->eval_s += pt->eval_s;
  }
  free(tasks);
  if (mtl) { /* one training run on the union */
    task_train tt;
    config_task_train(c, "", &tt);
    int steps;
    GORP_CALL(cl_steps_for(&tt, all_examples, "mtl", &steps));
    t->train_s = steps * t->step_s;
  }
  return GORP_OK;
}

void plan_time_free(plan_time *t) {
  free(t->task);
  memset(t, 0, sizeof(*t));
}
