/* gorp run CONFIG.ini [--set section.key=value]...: builds or loads the model, then trains and
 * evaluates it on every task of data.tasks in order, printing progress, each task's loss curve and
 * accuracy, and a summary; writes predictions and the final model into run.out_dir. */
#include "gorp/backend.h"
#include "gorp/cl.h"
#include "gorp/cmd.h"
#include "gorp/err.h"
#include "gorp/fsutil.h"
#include "gorp/modelfile.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct task_summary {
  int steps;
  float first_loss, last_loss;
  cl_scores scores;
} task_summary;

static int model_setup(model *m, const gorp_config *c, const tokenizer *tok) {
  if (!strcmp(c->model.init, "random")) {
    model_config arch = c->model.arch;
    if (arch.vocab_size == 0) arch.vocab_size = tok->vocab_size;
    GORP_CALL(model_create(m, &arch));
    model_init_random(m, c->run.seed, c->model.init_std);
  } else {
    GORP_CALL(modelfile_load(m, c->model.init));
  }
  if (m->cfg.vocab_size < tok->vocab_size)
    GORP_ERR(GORP_EINPUT, "model.vocab_size = %d is smaller than the tokenizer's %d ids",
             m->cfg.vocab_size, tok->vocab_size);
  return GORP_OK;
}

/* Mean loss over each tenth of the task: the loss curve in one line. */
static void print_loss_curve(const float *losses, int n) {
  printf("  loss curve:");
  const int parts = n < 10 ? n : 10;
  for (int p = 0; p < parts; p++) {
    int a = p * n / parts, b = (p + 1) * n / parts;
    double s = 0.0;
    for (int i = a; i < b; i++) s += losses[i];
    printf(" %.3f", s / (b - a));
  }
  printf("\n");
}

static int run_tasks(const gorp_config *c, model *m, const tokenizer *tok, task_summary *sum) {
  char path[4096];
  for (int ti = 0; ti < c->data.n_tasks; ti++) {
    const char *name = c->data.tasks[ti];
    cl_task task;
    GORP_CALL(clbench_load(&task, c->data.root, name, c->data.instructions));
    cl_encoded enc;
    GORP_CALL(cl_encode_train(&enc, tok, &task, c, ti, m->cfg.max_seq));
    printf("task %d/%d %s/%s: %d training examples (longest %d tokens), %d test items\n", ti + 1,
           c->data.n_tasks, task.task_type, task.dataset, enc.n, enc.max_len, task.n_test);
    int steps = cl_steps_for(c, enc.n);
    float *losses;
    GORP_ALLOC(losses, steps, "loss curve");
    adamw opt; /* a fresh optimizer per task, as the benchmark's training script does */
    GORP_CALL(adamw_init(&opt, m->n_params, c->train.lr, c->train.beta1, c->train.beta2,
                         c->train.eps, c->train.weight_decay));
    GORP_CALL(cl_train_task(m, &opt, &enc, tok->pad_id, c, ti, name, losses, &steps));
    print_loss_curve(losses, steps);
    snprintf(path, sizeof(path), "%s/predictions/after_%02d", c->run.out_dir, ti + 1);
    GORP_CALL(fs_mkdirs(path));
    snprintf(path, sizeof(path), "%s/predictions/after_%02d/%s.jsonl", c->run.out_dir, ti + 1,
             name);
    GORP_CALL(cl_evaluate(m, tok, &task, c, ti, path, &sum[ti].scores));
    printf("  %s: exact match %.1f%% (%d/%d), in-list %.1f%%\n", name, sum[ti].scores.accuracy,
           sum[ti].scores.correct, sum[ti].scores.n, sum[ti].scores.in_list_rate);
    sum[ti].steps = steps;
    sum[ti].first_loss = losses[0];
    sum[ti].last_loss = losses[steps - 1];
    free(losses);
    adamw_free(&opt);
    cl_encoded_free(&enc);
    clbench_free(&task);
  }
  return GORP_OK;
}

static int run(const gorp_config *c) {
  int world = 1;
  GORP_MPI(MPI_Comm_size(MPI_COMM_WORLD, &world));
  /* Until the tensor/data-parallel layout exists every rank would repeat the same run and write
   * the same files, so more than one rank is refused rather than silently wasted. */
  if (world != 1)
    GORP_ERR(GORP_EINPUT,
             "this gorp runs on one MPI rank (tensor/data parallelism is not built yet), but the "
             "job has %d ranks: launch it with one task",
             world);
  GORP_CALL(backend_select(c->run.backend));
  tokenizer tok;
  GORP_CALL(tokenizer_open(&tok, c->data.tokenizer));
  model m;
  GORP_CALL(model_setup(&m, c, &tok));
  GORP_CALL(fs_mkdirs(c->run.out_dir));
  printf("gorp run: %s, %zu parameters (%d layers, hidden %d, heads %d/%d, vocab %d), backend %s\n",
         c->file, m.n_params, m.cfg.num_layers, m.cfg.hidden_size, m.cfg.num_heads,
         m.cfg.num_kv_heads, m.cfg.vocab_size, backend_get()->name);
  task_summary *sum;
  GORP_ALLOC(sum, c->data.n_tasks, "task summaries");
  GORP_CALL(run_tasks(c, &m, &tok, sum));
  char path[4096];
  snprintf(path, sizeof(path), "%s/model.h5", c->run.out_dir);
  GORP_CALL(modelfile_save(&m, path, NULL));
  printf("\n| task | steps | first loss | last loss | exact match %% | in-list %% |\n"
         "|---|---|---|---|---|---|\n");
  for (int i = 0; i < c->data.n_tasks; i++)
    printf("| %s | %d | %.3f | %.3f | %.1f | %.1f |\n", c->data.tasks[i], sum[i].steps,
           sum[i].first_loss, sum[i].last_loss, sum[i].scores.accuracy, sum[i].scores.in_list_rate);
  printf("\nmodel written to %s; predictions under %s/predictions/\n", path, c->run.out_dir);
  free(sum);
  model_free(&m);
  tokenizer_free(&tok);
  return GORP_OK;
}

int cmd_run(int argc, char **argv) {
  const char *path = NULL;
  char **overrides = calloc((size_t)argc, sizeof(char *));
  int n_over = 0;
  if (!overrides) GORP_ERR(GORP_EMEM, "out of memory");
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--set")) {
      if (++i >= argc) GORP_ERR(GORP_EUSAGE, "run: --set needs section.key=value");
      overrides[n_over++] = argv[i];
    } else if (!path) {
      path = argv[i];
    } else {
      GORP_ERR(GORP_EUSAGE, "run: unexpected argument '%s'", argv[i]);
    }
  }
  if (!path) GORP_ERR(GORP_EUSAGE, "usage: gorp run CONFIG.ini [--set section.key=value]...");
  gorp_config c;
  GORP_CALL(config_load(&c, path, overrides, n_over));
  int rc = run(&c);
  config_free(&c);
  free(overrides);
  return rc;
}
