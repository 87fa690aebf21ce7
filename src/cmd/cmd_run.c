/* gorp run CONFIG.ini [--set section.key=value]... [--force-config]: builds or loads the model,
 * evaluates it zero-shot, then trains on every task of data.tasks in order and evaluates after
 * each task, printing progress, loss curves, the accuracy matrix and AP/BWT/FWT/forgetting;
 * writes results.h5, metrics.jsonl, predictions, checkpoints and the final model into
 * run.out_dir. A run directory that holds checkpoints is resumed from its LATEST; SIGTERM/SIGUSR1
 * checkpoint and exit with CKPT_EXIT_RESUBMIT. */
#include "gorp/backend.h"
#include "gorp/bf16.h"
#include "gorp/cl.h"
#include "gorp/cl_log.h"
#include "gorp/cl_metrics.h"
#include "gorp/cl_results.h"
#include "gorp/ckpt.h"
#include "gorp/cl_ckpt.h"
#include "gorp/cmd.h"
#include "gorp/config_dist.h"
#include "gorp/dist.h"
#include "gorp/err.h"
#include "gorp/fsutil.h"
#include "gorp/modelfile.h"
#include "gorp/out.h"
#include "gorp/proc.h"

#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* This rank's shard of the model: freshly initialised, or read from model.init; the frozen
 * matrices in bf16 from the start under model.dtype = bf16 (trainer_prepare_model). */
static int model_setup(model *m, const gorp_config *c, const tokenizer *tok, const dist *d) {
  const model_prep prep = {trainer_prepare_model, c};
  if (!strcmp(c->model.init, "random")) {
    model_config arch = c->model.arch;
    if (arch.vocab_size == 0) arch.vocab_size = tok->vocab_size;
    GORP_CALL(model_plan_tp(m, &arch, d));
    GORP_CALL(model_alloc_params(m, &prep));
    model_init_random(m, c->run.seed, c->model.init_std, c->model.embed_init_std);
  } else {
    GORP_CALL(modelfile_load_tp(m, c->model.init, d, &prep));
  }
  /* the config's own max_seq is checked with the config; a model file brings its own */
  if (m->cfg.max_seq <= c->eval.max_new_tokens)
    GORP_ERR(GORP_EINPUT,
             "model.init '%s' has max_position_embeddings = %d, not larger than "
             "eval.max_new_tokens = %d: an evaluation prompt and its answer share the positions",
             c->model.init, m->cfg.max_seq, c->eval.max_new_tokens);
  if (m->cfg.vocab_size < tok->vocab_size)
    GORP_ERR(GORP_EINPUT, "model.vocab_size = %d is smaller than the tokenizer's %d ids",
             m->cfg.vocab_size, tok->vocab_size);
  return GORP_OK;
}

/* Mean loss over each tenth of the task: the loss curve in one line. */
static void print_loss_curve(const float *losses, int n) {
  out_printf("  loss curve:");
  const int parts = n < 10 ? n : 10;
  for (int p = 0; p < parts; p++) {
    int a = p * n / parts, b = (p + 1) * n / parts;
    double s = 0.0;
    for (int i = a; i < b; i++) s += losses[i];
    out_printf(" %.3f", s / (b - a));
  }
  out_printf("\n");
}

static void print_matrix(const gorp_config *c, const double *acc, const double *in_list) {
  const int T = c->data.n_tasks;
  out_printf("\naccuracy matrix (%%; row 0 = zero-shot, row j = after task j; in-list %% in "
             "brackets)\n%-8s",
             "");
  for (int i = 0; i < T; i++) out_printf(" %16s", c->data.tasks[i]);
  out_printf("\n");
  for (int r = 0; r <= T; r++) {
    out_printf("after %-2d", r);
    for (int i = 0; i < T; i++) {
      if (isnan(acc[r * T + i]))
        out_printf(" %16s", "-");
      else
        out_printf("    %5.1f (%5.1f)", acc[r * T + i], in_list[r * T + i]);
    }
    out_printf("\n");
  }
  cl_summary s;
  cl_metrics(&s, acc, T);
  const double v[4] = {s.ap, s.bwt, s.fwt, s.forgetting};
  const char *name[4] = {"AP", "BWT", "FWT", "forgetting"};
  for (int k = 0; k < 4; k++) { /* a metric with an unmeasured term has no value */
    if (isnan(v[k]))
      out_printf("%s%s n/a", k ? "  " : "", name[k]);
    else
      out_printf("%s%s %.2f", k ? "  " : "", name[k], v[k]);
  }
  out_printf("\n");
  if (T > 1 && !c->eval.zero_shot)
    out_printf("(FWT n/a: eval.zero_shot = false, the zero-shot row was not measured)\n");
}

/* Everything a run carries from task to task. */
typedef struct run_ctx {
  const gorp_config *c;
  const dist *d;
  trainer *tr;
  const tokenizer *tok;
  const cl_task *tasks;
  cl_results *res;
  char results_path[4096];
  ckpt_pos resume; /* where a resumed run continues (task -2: a fresh run) */
  cl_log log;      /* metrics.jsonl */
  double elapsed0; /* seconds of the resumed task's steps before the checkpoint (cl_log_open) */
  int stop[1 + MODEL_MAX_EOS + CL_MAX_STOP_TEXTS]; /* the ids evaluation stops at (cl_stop_ids) */
  int n_stop;
} run_ctx;

static volatile sig_atomic_t stop_requested; /* SIGTERM / SIGUSR1: checkpoint and exit */

/* Rank 0 writes results.h5 (every rank holds the same matrices). */
static int write_results(run_ctx *r) {
  if (r->d->rank == 0) GORP_CALL(cl_results_write(r->res, r->results_path));
  return GORP_OK;
}

/* *stop: whether any rank received SIGTERM/SIGUSR1, so that all ranks stop at the same step. */
static int stop_agreed(run_ctx *r, int *stop) {
  *stop = stop_requested;
  return dist_max_ints(r->d, stop, 1);
}

/* cl_eval_hook's poll, after every evaluation batch. Fault injection for the tests (as ckpt.c's
 * GORP_FAULT_SAVE_ABORT): GORP_FAULT_EVAL_SIGNAL=k makes world rank 0 send itself SIGUSR1 after
 * its k-th evaluation batch, a signal inside a row at a known point whatever the machine's
 * speed. */
static int eval_poll(void *ctx, int *stop) {
  run_ctx *r = ctx;
  static int batches;
  const char *k = getenv("GORP_FAULT_EVAL_SIGNAL");
  if (k && ++batches == atoi(k) && r->d->rank == 0) raise(SIGUSR1);
  return stop_agreed(r, stop);
}

/* Evaluates task column i of row (0 = zero-shot), the row after task `task` (-1: none), and
 * records it (rank 0 writes the file). A signal stops it after the current batch: the finished
 * answers go to <predictions>.jsonl.partial, the position (eval_task) into a checkpoint. */
static int eval_cell(run_ctx *r, int task, int row, int i) {
  const gorp_config *c = r->c;
  char path[4096], partial[4200];
  snprintf(path, sizeof(path), "%s/predictions/after_%02d", c->run.out_dir, row);
  if (r->d->rank == 0) GORP_CALL(fs_mkdirs(path));
  snprintf(path, sizeof(path), "%s/predictions/after_%02d/%s.jsonl", c->run.out_dir, row,
           r->tasks[i].dataset);
  snprintf(partial, sizeof(partial), "%s.partial", path);
  const cl_eval_hook hook = {.poll = eval_poll,
                             .ctx = r,
                             .partial_path = partial,
                             .resume = r->resume.task == task && r->resume.eval_task == i + 1};
  cl_scores s;
  const double t0 = proc_now_s();
  const int rc = cl_evaluate(trainer_model(r->tr), r->tok, &r->tasks[i], c, r->d, i, r->stop,
                             r->n_stop, path, &hook, &s);
  const double seconds = proc_now_s() - t0;
  if (rc == CKPT_EXIT_RESUBMIT) {
    GORP_CALL(write_results(r)); /* the row's columns before this one */
    const ckpt_pos pos = {.task = task, .done = 1, .eval_task = i + 1};
    GORP_CALL(cl_ckpt_save(c, r->d, r->tr, r->res, &pos));
    out_printf("gorp run: stopped by a signal while evaluating %s in row %d; checkpoint written, "
               "resubmit to continue (exit code %d)\n",
               r->tasks[i].dataset, row, CKPT_EXIT_RESUBMIT);
    return rc;
  }
  GORP_CALL(rc);
  const int T = c->data.n_tasks;
  r->res->acc[row * T + i] = s.accuracy;
  r->res->in_list[row * T + i] = s.in_list_rate;
  r->res->eval_s[row] = (isnan(r->res->eval_s[row]) ? 0.0 : r->res->eval_s[row]) + seconds;
  GORP_CALL(cl_log_eval(&r->log, row, r->tasks[i].dataset, i + 1, &s, seconds));
  out_printf("  eval %-12s exact match %5.1f%% (%d/%d), in-list %5.1f%%\n", r->tasks[i].dataset,
             s.accuracy, s.correct, s.n, s.in_list_rate);
  return GORP_OK;
}

static void on_stop_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

/* Mid-task checkpoints (every run.checkpoint_every steps) and the checkpoint-and-stop on a
 * signal, between two training steps. */
typedef struct step_ctx {
  run_ctx *r;
  int task;
} step_ctx;

static int after_step(void *ctx, int step, const float *losses) {
  step_ctx *s = ctx;
  const gorp_config *c = s->r->c;
  const int every = c->run.checkpoint_every;
  int stop;
  GORP_CALL(stop_agreed(s->r, &stop));
  if (!stop && !(every > 0 && step % every == 0)) return GORP_OK;
  const ckpt_pos pos = {.task = s->task, .step = step, .done = 0, .losses = (float *)losses};
  /* every rank writes its part (collective parallel HDF5); ckpt_save returns once the file is
   * published, on every rank */
  GORP_CALL(cl_ckpt_save(c, s->r->d, s->r->tr, s->r->res, &pos));
  if (!stop) return GORP_OK;
  out_printf("gorp run: stopped by a signal after step %d of task %d; checkpoint written, resubmit "
             "to continue (exit code %d)\n",
             step, s->task + 1, CKPT_EXIT_RESUBMIT);
  return CKPT_EXIT_RESUBMIT;
}

/* Saves the state after task `task` (-1: the zero-shot row) is complete; then honours a stop. */
static int task_done(run_ctx *r, int task) {
  const ckpt_pos pos = {.task = task, .step = 0, .done = 1};
  GORP_CALL(cl_ckpt_save(r->c, r->d, r->tr, r->res, &pos));
  int stop;
  GORP_CALL(stop_agreed(r, &stop));
  if (!stop) return GORP_OK;
  out_printf(
      "gorp run: stopped by a signal after task %d; checkpoint written, resubmit to continue "
      "(exit code %d)\n",
      task + 1, CKPT_EXIT_RESUBMIT);
  return CKPT_EXIT_RESUBMIT;
}

/* Evaluates columns 0..n-1 of row (the row after task `task`, -1: zero-shot), from the column a
 * signal stopped it in when the run resumes there, then writes results.h5 and the checkpoint. */
static int eval_row(run_ctx *r, int task, int row, int n) {
  const int from = r->resume.task == task ? r->resume.eval_task - (r->resume.eval_task > 0) : 0;
  GORP_CHECK(from < n, GORP_EINPUT,
             "checkpoint: the evaluation after task %d was stopped in column %d of a %d-column row",
             task + 1, from + 1, n);
  for (int i = from; i < n; i++) {
    const int rc = eval_cell(r, task, row, i);
    if (rc) return rc;
  }
  r->resume.eval_task = 0;
  GORP_CALL(write_results(r));
  return task_done(r, task);
}

/* Trains on one encoded training set (a task, or for mtl the union), from a resumed step when
 * the checkpoint says so, then lets the method update its subspaces. */
static int train_one(run_ctx *r, const cl_encoded *enc, const task_train *tt, int task_index,
                     const char *name) {
  const gorp_config *c = r->c;
  int steps, start = 0, resumed = 0;
  GORP_CALL(cl_steps_for(tt, enc->n, name, &steps));
  float *losses;
  GORP_ALLOC(losses, steps, "loss curve");
  if (r->resume.task == task_index && !r->resume.done) { /* the trainer holds the task's state */
    start = r->resume.step;
    if (start > steps) GORP_ERR(GORP_EINPUT, "checkpoint: step %d of a %d-step task", start, steps);
    if (start) memcpy(losses, r->resume.losses, (size_t)start * sizeof(float));
    resumed = 1;
    out_printf("  resuming %s at step %d of %d\n", name, start, steps);
  } else {
    GORP_CALL(trainer_begin_task(r->tr, task_index, tt));
  }
  step_ctx sc = {.r = r, .task = task_index};
  const cl_hook hook = {
      .after_step = after_step, .ctx = &sc, .log = &r->log, .elapsed0 = resumed ? r->elapsed0 : 0};
  double seconds;
  int rc = cl_train_task(r->tr, enc, r->tok->pad_id, c, tt, task_index, name, start, losses, &steps,
                         &hook, &seconds);
  if (!rc) print_loss_curve(losses, steps);
  if (!rc) rc = cl_results_set_curve(r->res, task_index, losses, steps, seconds);
  free(losses);
  if (rc == CKPT_EXIT_RESUBMIT) return rc;
  GORP_CALL(rc);
  if (trainer_observes(r->tr)) GORP_CALL(cl_observe_task(r->tr, enc, r->tok->pad_id, c));
  return trainer_end_task(r->tr, task_index);
}

/* mtl: one training run on the union of every task's examples (each task's cap applies), then
 * every task is evaluated in the last row; rows 1..T-1 stay unmeasured. */
static int run_mtl(run_ctx *r) {
  const gorp_config *c = r->c;
  const int T = c->data.n_tasks;
  cl_encoded all = {0};
  for (int ti = 0; ti < T; ti++) {
    cl_encoded enc;
    GORP_CALL(
        cl_encode_train(&enc, r->tok, &r->tasks[ti], c, ti, trainer_model(r->tr)->cfg.max_seq));
    GORP_CALL(cl_encoded_append(&all, &enc, ti << 24));
    cl_encoded_free(&enc);
  }
  task_train tt;
  config_task_train(c, "", &tt);
  char lr[96];
  trainer_lr_text(r->tr, &tt, lr, sizeof(lr));
  out_printf(
      "mtl: %d training examples of %d tasks at once (longest %d tokens), %d epochs, batch %d, "
      "%s\n",
      all.n, T, all.max_len, tt.epochs, tt.batch_size, lr);
  const int rc = train_one(r, &all, &tt, 0, "mtl");
  cl_encoded_free(&all);
  if (rc) return rc;
  return eval_row(r, 0, T, T);
}

/* Trains on every task in order; row 0 (zero-shot) evaluates every task, row j the tasks up to
 * j+1 (task j+1 before training it gives FWT). results.h5 is rewritten and a checkpoint saved
 * after every row; a resumed run continues after the last completed part. */
static int run_tasks(run_ctx *r) {
  const gorp_config *c = r->c;
  model *m = trainer_model(r->tr);
  const int T = c->data.n_tasks;
  const int mtl = trainer_method(r->tr) == METHOD_MTL;
  int first = 0;
  if (r->resume.task == -2 || (r->resume.task == -1 && r->resume.eval_task)) {
    if (c->eval.zero_shot) {
      out_printf("zero-shot evaluation of the base model\n");
      const int rc = eval_row(r, -1, 0, T);
      if (rc) return rc;
    } else {
      out_printf("zero-shot evaluation skipped (eval.zero_shot = false): row 0 stays unmeasured\n");
    }
  } else {
    first = r->resume.done ? r->resume.task + 1 : r->resume.task;
  }
  if (r->resume.task >= 0 && r->resume.eval_task) { /* stopped inside the row after that task */
    const int ti = r->resume.task,
              rc = mtl ? eval_row(r, 0, T, T) : eval_row(r, ti, ti + 1, ti + 2 < T ? ti + 2 : T);
    if (rc) return rc;
  }
  if (mtl) return first == 0 ? run_mtl(r) : GORP_OK;
  for (int ti = first; ti < T; ti++) {
    const cl_task *task = &r->tasks[ti];
    cl_encoded enc;
    GORP_CALL(cl_encode_train(&enc, r->tok, task, c, ti, m->cfg.max_seq));
    task_train tt;
    config_task_train(c, task->dataset, &tt);
    char lr[96];
    trainer_lr_text(r->tr, &tt, lr, sizeof(lr));
    out_printf("task %d/%d %s/%s: %d training examples (longest %d tokens), %d epochs, batch %d, "
               "%s\n",
               ti + 1, T, task->task_type, task->dataset, enc.n, enc.max_len, tt.epochs,
               tt.batch_size, lr);
    const int rc = train_one(r, &enc, &tt, ti, task->dataset);
    cl_encoded_free(&enc);
    if (rc) return rc;
    const int stop = eval_row(r, ti, ti + 1, ti + 2 < T ? ti + 2 : T);
    if (stop) return stop;
  }
  return GORP_OK;
}

/* Every rank's peak resident memory (VmHWM): what a user sizing nodes for a tp x dp layout needs,
 * next to `gorp plan`'s estimate. */
static int print_peak_memory(const dist *d) {
  double mine = proc_peak_rss_mb(), range[2] = {mine, -mine};
  GORP_CALL(dist_max_doubles(d, range, 2));
  out_printf("peak resident memory per rank (VmHWM): max %.0f MB, min %.0f MB over %d rank(s) "
             "(tp %d x dp %d)\n",
             range[0], -range[1], d->size, d->tp_size, d->dp_size);
  return GORP_OK;
}

/* model.h5: the fine-tuned model as it evaluates (adapters merged), the adapters kept beside it
 * (modelfile_save_merged_tp). Pair p trained on task p; seqlora's one pair on every task. */
static int save_final_model(const run_ctx *r, const char *path) {
  const gorp_config *c = r->c;
  const lora *lo = trainer_lora(r->tr);
  const int n = lo ? lo->n_pairs : 0;
  char all[4096] = "", **names;
  GORP_ALLOC(names, n + 1, "adapter pair names");
  for (int i = 0; i < c->data.n_tasks; i++)
    snprintf(all + strlen(all), sizeof(all) - strlen(all), "%s%s", i ? "," : "", c->data.tasks[i]);
  for (int p = 0; p < n; p++)
    names[p] = trainer_method(r->tr) == METHOD_SEQLORA ? all : c->data.tasks[p];
  const int rc =
      modelfile_save_merged_tp(trainer_model(r->tr), lo, c->run.method, (const char *const *)names,
                               path, NULL, r->d); /* every rank its shard */
  free(names);
  return rc;
}

int cmd_run_catch_stop_signals(void) {
  struct sigaction sa = {.sa_handler = on_stop_signal};
  sigset_t stop;
  if (sigemptyset(&sa.sa_mask) || sigaction(SIGTERM, &sa, NULL) || sigaction(SIGUSR1, &sa, NULL) ||
      sigemptyset(&stop) || sigaddset(&stop, SIGTERM) || sigaddset(&stop, SIGUSR1) ||
      sigprocmask(SIG_UNBLOCK, &stop, NULL))
    GORP_ERR(GORP_ELIB, "cannot catch SIGTERM and SIGUSR1");
  return GORP_OK;
}

static int run(const gorp_config *c, int force_config) {
  dist d;
  GORP_CALL(config_check_same_on_ranks(c));
  GORP_CALL(dist_init(&d, c->parallel.tp, c->parallel.dp));
  GORP_CALL(backend_select(c->run.backend));
  if (d.rank == 0) GORP_CALL(fs_mkdirs(c->run.out_dir));
  GORP_CALL(dist_barrier(&d));
  GORP_CALL(ckpt_lock(c, &d)); /* before anything in run.out_dir is read or written */
  tokenizer tok;
  GORP_CALL(cl_open_tokenizer(&tok, c, &d, c->run.out_dir));
  const int T = c->data.n_tasks;
  cl_task *tasks;
  GORP_CALL(cl_load_tasks(c, 1, &tasks));
  model m;
  GORP_CALL(model_setup(&m, c, &tok, &d));
  out_printf(
      "gorp run: %s, %zu parameters (%d layers, hidden %d, heads %d/%d, vocab %d), backend %s "
      "(BLAS kernels %s)\n",
      c->file, m.n_params + m.n_params16, m.cfg.num_layers, m.cfg.hidden_size, m.cfg.num_heads,
      m.cfg.num_kv_heads, m.cfg.vocab_size, backend_get()->name, backend_blas_core());
  if (!strcmp(c->model.dtype, "bf16") && !m.n_params16)
    out_printf("model.dtype = bf16: run.method = %s trains every weight, so all stay fp32\n",
               c->run.method);
  if (m.n_params16)
    out_printf("model.dtype = bf16: %zu frozen weights in bf16 (%.1f MB), %zu in fp32, products "
               "through %s\n",
               m.n_params16, m.n_params16 * 2e-6, m.n_params,
               bf16_path_name(bf16_gemm_path(m.bf16c)));
  if (m.trained_bf16)
    out_printf("model.trained_products = bf16: the trained matrices multiply in bf16 with fp32 "
               "sums, through %s\n",
               bf16_path_name(bf16_gemm_path(m.bf16c)));
  /* the order's name when it came from data.order, else the list itself */
  char order[4096] = "";
  for (int i = 0; i < T; i++)
    snprintf(order + strlen(order), sizeof(order) - strlen(order), "%s%s", i ? "," : "",
             c->data.tasks[i]);
  if (c->data.order[0]) snprintf(order, sizeof(order), "%s", c->data.order);
  cl_results res = {.T = T,
                    .tasks = c->data.tasks,
                    .method = c->run.method,
                    .name = c->run.name,
                    .order = order,
                    .seed = c->run.seed};
  GORP_ALLOC(res.acc, (size_t)(T + 1) * T, "accuracy matrix");
  GORP_ALLOC(res.in_list, (size_t)(T + 1) * T, "in-list matrix");
  for (int i = 0; i < (T + 1) * T; i++) res.acc[i] = res.in_list[i] = NAN;
  trainer tr;
  GORP_CALL(trainer_create(&tr, &m, c, c->run.method, T, &d));
  if (tr.streaming)
    out_printf("full.stream_grad: the gradients of %d full-rank targets (%zu floats) are held as "
               "one layer's (%zu floats)\n",
               tr.n_full, m.n_streamed, m.n_grad_slot);
  char *config_text;
  GORP_CALL(config_to_text(c, &config_text));
  res.config_text = config_text;
  GORP_CALL(cl_results_history(&res, trainer_method(&tr) == METHOD_MTL));
  run_ctx r = {
      .c = c, .d = &d, .tr = &tr, .tok = &tok, .tasks = tasks, .res = &res, .resume.task = -2};
  snprintf(r.results_path, sizeof(r.results_path), "%s/results.h5", c->run.out_dir);
  GORP_CALL(cl_stop_ids(&m, &tok, c, r.stop, &r.n_stop)); /* a bad eval.stop: before training */
  out_printf("evaluation stops at id%s", r.n_stop == 1 ? "" : "s");
  for (int i = 0; i < r.n_stop; i++) out_printf(" %d", r.stop[i]);
  out_printf(" (the tokenizer's EOS, the model's end ids and eval.stop together)\n");
  if (ckpt_exists(c)) GORP_CALL(cl_ckpt_load(c, force_config, &d, &tr, &res, &r.resume));
  /* after the load: the lines past the checkpoint's position go */
  GORP_CALL(cl_log_open(&r.log, c->run.out_dir, d.rank == 0, &r.resume, &res, &r.elapsed0));
  const int rc = run_tasks(&r);
  cl_log_close(&r.log);
  free(r.resume.losses);
  if (rc == CKPT_EXIT_RESUBMIT) return rc;
  GORP_CALL(rc);
  char path[4096];
  snprintf(path, sizeof(path), "%s/model.h5", c->run.out_dir);
  GORP_CALL(save_final_model(&r, path));
  print_matrix(c, res.acc, res.in_list);
  GORP_CALL(print_peak_memory(&d));
  out_printf("\nresults in %s/results.h5, model in %s, predictions under %s/predictions/\n",
             c->run.out_dir, path, c->run.out_dir);
  free(res.acc);
  free(res.in_list);
  cl_results_history_free(&res);
  free(config_text);
  trainer_free(&tr);
  for (int i = 0; i < T; i++) clbench_free(&tasks[i]);
  free(tasks);
  model_free(&m);
  tokenizer_free(&tok);
  return GORP_OK;
}

typedef struct run_args {
  const char *config;
  cmd_list sets; /* section.key=value overrides, in order */
  int force_config;
} run_args;

static int run_main(const void *args) {
  const run_args *a = args;
  gorp_config c;
  GORP_CALL(config_load(&c, a->config, a->sets.items, a->sets.n));
  const int rc = run(&c, a->force_config);
  config_free(&c);
  return rc;
}

static const cmd_arg run_table[] = {
    {NULL, CMD_TEXT, offsetof(run_args, config), "CONFIG.ini", "the run's config (docs/CONFIG.md)",
     1},
    CMD_ARG_SET(run_args, sets),
    {"force-config", CMD_FLAG, offsetof(run_args, force_config), NULL,
     "resume although a moved input (data.root, model.init, ...) changed the run hash", 0},
};

const cmd_spec cmd_run_spec = {CMD_SPEC(
    "run",
    "trains on each task of the config's order, evaluating after each; resumes from checkpoints",
    run_table, run_args, run_main)};
