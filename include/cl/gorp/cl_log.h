/* metrics.jsonl of a run directory (docs/RESULTS.md): one JSON object per line, one per training
 * step ("kind": "train") and one per evaluation cell ("kind": "eval"), appended and flushed line
 * by line by world rank 0 as the run goes, so that a crash loses no line already written. A
 * resumed run keeps the lines before its checkpoint's position and drops the others (rewriting the
 * file atomically when any goes), so that every step and cell is in the file once however often
 * the run was stopped; from the kept lines it rebuilds the history results.h5 holds (loss curves,
 * times), which checkpoints do not.
 * Not for: results.h5 itself (cl_results.h), the progress lines on stdout. */
#ifndef GORP_CL_LOG_H
#define GORP_CL_LOG_H

#include "gorp/cl.h"
#include "gorp/cl_results.h"
#include "gorp/ckpt.h"
#include "gorp/trainer.h"

#include <stdio.h>

typedef struct cl_log {
  FILE *f; /* NULL: this rank writes nothing */
  char path[4200];
} cl_log;

/* On world rank 0 (rank0 = 1) opens <dir>/metrics.jsonl for appending, for a run at position p
 * (p->task == -2: a fresh run, which keeps no line) of res's tasks; the other ranks get a log that
 * writes nothing. From the kept lines, res's history (cl_results_history) gets the loss curves and
 * training seconds of the tasks trained before p and the seconds of the evaluation rows before it;
 * *elapsed the seconds of the kept steps of the task p stands in (0 when none). A kept line that is
 * not one of this layout's objects is GORP_EINPUT naming the file and line; an unfinished last line
 * (a crash while writing it) is dropped. */
int cl_log_open(cl_log *l, const char *dir, int rank0, const ckpt_pos *p, cl_results *res,
                double *elapsed);

/* One training step. */
typedef struct cl_log_step {
  const char *task; /* dataset name, or "mtl" */
  int task_index;   /* 1-based position in the order (mtl: 1) */
  int step, steps;  /* 1-based step of the task's steps */
  float loss;
  trainer_rates lr;
  double grad_norm;               /* before clipping */
  long tokens;                    /* tokens of the step's batch, padding excluded */
  double tokens_per_s, elapsed_s; /* the step's own rate; seconds since the task's first step */
} cl_log_step;
int cl_log_train(cl_log *l, const cl_log_step *s);
/* The cell of evaluation row `row` (0: zero-shot, r: after task r) for task_index (1-based),
 * which took `seconds`. */
int cl_log_eval(cl_log *l, int row, const char *task, int task_index, const cl_scores *s,
                double seconds);
void cl_log_close(cl_log *l);

#endif
