/* What trains and how, per method: which weights get gradients, the LoRA adapters, the
 * optimizers and one training step (forward, backward, global-norm clipping, updates).
 * The runner (cl_train.c) batches the data and calls trainer_step.
 * Not for: batching, evaluation, or the maths of the optimizers themselves (optim.h, lora.h). */
#ifndef GORP_TRAINER_H
#define GORP_TRAINER_H

#include "gorp/config.h"
#include "gorp/lora.h"
#include "gorp/model.h"
#include "gorp/optim.h"

#include <stdint.h>

typedef enum { METHOD_SEQFT, METHOD_SEQLORA, METHOD_INCLORA } method_kind;

typedef struct trainer {
  const gorp_config *c;
  method_kind method;
  model *m;
  int has_lora;
  lora lo;
  int has_full;   /* some base weights train */
  adamw opt_full; /* over m->grads (the trainable base tensors) */
  adamw opt_lora; /* over the active LoRA pair */
  lora_dropout_ctx drop;
} trainer;

/* Sets up the method's trainable set on m (which must outlive the trainer) for n_tasks tasks;
 * attaches the adapters to m so that evaluation sees them. */
int trainer_create(trainer *t, model *m, const gorp_config *c, int n_tasks);
void trainer_free(trainer *t);
/* Before task `task` (0-based): a new adapter pair where the method wants one, fresh optimizers
 * (as the benchmark's training script starts each task) with the task's settings. */
int trainer_begin_task(trainer *t, int task, const task_train *tt);
/* One optimizer step on tokens/targets (B, T); example_ids (B) are global example indices (they
 * key the dropout masks), step_key identifies the step (task, step). */
int trainer_step(trainer *t, const int *tokens, const int *targets, const int64_t *example_ids,
                 int B, int T, uint64_t step_key, float *loss);

#endif
