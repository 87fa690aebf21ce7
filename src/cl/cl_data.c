/* The data a run starts from: its tokenizer (the synthetic suite writes its own) and every task
 * of the order, loaded and validated before any training step. Shared by gorp run and gorp
 * pretrain. */
#include "gorp/cl.h"

#include "gorp/err.h"
#include "gorp/fsutil.h"
#include "gorp/out.h"
#include "gorp/synth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cl_open_tokenizer(tokenizer *tok, const gorp_config *c, const dist *d, const char *dir) {
  if (strcmp(c->data.format, "synthetic")) {
    GORP_CALL(tokenizer_open(tok, c->data.tokenizer));
    int ierr = strcmp(c->data.chat_template, "none")
                   ? tokenizer_open_chat(tok, c->data.chat_template)
                   : GORP_OK;
    if (ierr) tokenizer_free(tok);
    return ierr;
  }
  if (strcmp(c->data.chat_template, "none"))
    GORP_ERR(GORP_EINPUT,
             "data.chat_template = %s: data.format = synthetic has no chat template; leave it "
             "none",
             c->data.chat_template);
  if (strcmp(c->data.tokenizer, "byte"))
    GORP_ERR(GORP_EINPUT,
             "data.tokenizer = %s: data.format = synthetic brings its own tokenizer; leave "
             "data.tokenizer unset",
             c->data.tokenizer);
  char path[4096];
  GORP_CALL(fs_path_fmt(path, sizeof(path), "%s/synthetic-tokenizer.json", dir));
  if (d->rank == 0) GORP_CALL(synth_write_tokenizer(path));
  GORP_CALL(dist_barrier(d));
  return tokenizer_open(tok, path);
}

/* Loads every task before any training, so that a missing dataset stops the run at start-up. */
int cl_load_tasks(const gorp_config *c, int report, cl_task **tasks) {
  GORP_ALLOC(*tasks, c->data.n_tasks, "tasks");
  for (int i = 0; i < c->data.n_tasks; i++) {
    if (!strcmp(c->data.format, "synthetic"))
      GORP_CALL(synth_load(&(*tasks)[i], c->data.tasks[i], c->run.seed, c->data.synthetic_train,
                           c->data.synthetic_test));
    else
      GORP_CALL(clbench_load(&(*tasks)[i], c->data.root, c->data.tasks[i], c->data.instructions));
    const cl_task *t = &(*tasks)[i];
    if (report)
      out_printf("loaded %s/%s: %d train, %d test items\n", t->task_type, t->dataset, t->n_train,
                 t->n_test);
    if (t->n_test_unlabelled && !strcmp(c->data.unlabelled, "drop")) {
      const int dropped = clbench_drop_unlabelled(&(*tasks)[i]);
      if (report)
        out_printf(
            "  %s: dropped %d test items labelled '-' (no gold label; data.unlabelled = drop)\n",
            t->dataset, dropped);
    } else if (t->n_test_unlabelled && report)
      out_printf(
          "  %s: %d test items are labelled '-' (no gold label); scored as never correct, as "
          "upstream does (data.unlabelled = score)\n",
          t->dataset, t->n_test_unlabelled);
    if (!t->n_test) GORP_ERR(GORP_EINPUT, "%s: no test items left to evaluate", t->dataset);
  }
  return GORP_OK;
}
