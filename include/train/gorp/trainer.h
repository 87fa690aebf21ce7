/* What trains and how, per method: which weights get gradients, the LoRA adapters, the
 * full-rank targets' rank-k optimizer, GORP's shared gradient space (bases built after each task,
 * projections while learning), and one training step (forward, backward, global-norm clipping,
 * projections, updates). The runner (cl_train.c) batches the data and calls trainer_step.
 * Not for: batching, evaluation, or the maths of the optimizers themselves (optim*.h, lora.h,
 * gorp_basis.h). */
#ifndef GORP_TRAINER_H
#define GORP_TRAINER_H

#include "gorp/config.h"
#include "gorp/dist.h"
#include "gorp/linalg.h"
#include "gorp/linalg_dist.h"
#include "gorp/lora.h"
#include "gorp/model.h"
#include "gorp/optim.h"
#include "gorp/optim_lowrank.h"
#include "gorp/state.h"

#include <stdint.h>

typedef enum {
  METHOD_SEQFT,
  METHOD_SEQLORA,
  METHOD_INCLORA,
  METHOD_OLORA,
  METHOD_NLORA,
  METHOD_GALORE,
  METHOD_GORP,
  METHOD_MTL /* the runner trains once on the union of the tasks; weights as seqft */
} method_kind;

/* A stored basis S (len, cap) row-major, r columns in use: the shared space of one matrix. Under
 * TP, a basis on a split axis holds this rank's rows [row_off, row_off + len) of the logical
 * (cap, cap) basis (gorp_basis_dist.h); otherwise len = cap and row_off = 0. */
typedef struct gorp_space {
  float *S;
  int len, cap, r;
  int row_off;
  int *task_end; /* (n_tasks) columns in use after each task: task t owns [task_end[t-1], end) */
  float *cov;    /* (len, len) input covariance being accumulated (activation bases), or NULL */
  long cov_rows; /* rows accumulated into cov */
} gorp_space;

/* One full-rank weight that trains (full.targets under galore/gorp). */
typedef struct full_target {
  int tensor;        /* index into model.tensors */
  int layer, target; /* LORA_* target */
  int m, n;          /* this rank's shape (out, in) */
  dist_matrix dm;    /* the logical weight and this rank's part of it (comm: under TP only) */
  dist_matrix pdm;   /* under TP, the sharded matrix the basis protects (the weight, or the
                        rank-k optimizer's compressed gradient), when p_dist */
  int p_dist;
  lowrank_adam low; /* full.optimizer = lowrank */
  adamw plain;      /* full.optimizer = adam */
  gorp_space space;
} full_target;

typedef struct trainer {
  const gorp_config *c;
  method_kind method;
  model *m;
  int n_tasks;
  int has_seqft; /* every base weight trains with AdamW */
  adamw opt_all;
  int has_lora;
  lora lo;
  adamw opt_lora;         /* over the active pair */
  gorp_space *lora_space; /* (L * LORA_N_TARGETS): bases of the LoRA A matrices */
  float *pair_before;     /* (pair_size): the active pair before its update (project_update) */
  int n_full;
  full_target *full;
  float *full_before; /* the largest full-rank target before its update (plain Adam,
                         project_update) */
  int projecting;     /* method gorp */
  int input_axis;     /* gorp.axis = input */
  int activation;     /* gorp.basis_source = activation */
  linalg_ws ws;
  /* tensor parallelism: the SVD workspace of the TP group, the logical LoRA A matrices of the
   * targets whose A is split, and scratch for the sharded projections and extensions */
  linalg_dist_ws dws;
  dist_matrix lora_dm[LORA_N_TARGETS];
  float *tp_scratch;
  size_t tp_scratch_cap;
  lora_dropout_ctx drop;
  grad_segment *segs; /* (2 segs_cap) under TP: gradients by split (clipping) */
  size_t segs_cap;
  const dist *dist; /* data parallelism: set by the runner after trainer_create; NULL = 1 rank */
  const float *loss_weights; /* (B, T) of the next trainer_step's batch, normalised by the caller
                                (the loss is then sum w * ce), or NULL: the mean over answer
                                tokens */
} trainer;

/* Sets up the method's trainable set on m (which must outlive the trainer) for n_tasks tasks;
 * attaches the adapters to m so that evaluation sees them. Refuses a bad combination of keys
 * (naming them) before any training. */
int trainer_create(trainer *t, model *m, const gorp_config *c, int n_tasks);
void trainer_free(trainer *t);
/* Before task `task` (0-based): a new adapter pair where the method wants one, fresh optimizer
 * moments (as the benchmark's training script starts each task) with the task's settings. */
int trainer_begin_task(trainer *t, int task, const task_train *tt);
/* One optimizer step on tokens/targets (B, T); example_ids (B) are global example indices (they
 * key the dropout masks), step_key identifies the step (task, step). */
int trainer_step(trainer *t, const int *tokens, const int *targets, const int64_t *example_ids,
                 int B, int T, uint64_t step_key, float *loss);
/* With activation bases: adds the layer inputs of one batch (B, T; lengths (B) real tokens per
 * row) of the finished task to the covariances. */
int trainer_observe(trainer *t, const int *tokens, const int *lengths, int B, int T);
/* The trainer's state as table entries (trainer_state.c, docs/CHECKPOINT.md): LoRA pairs, GORP's
 * bases, the full-rank targets' optimizers and, with optim (mid-task), the AdamW moments. */
int trainer_state_describe(trainer *t, int optim, state_table *tab);
/* The LoRA pairs that exist (0 without adapters): a checkpoint's lora_pairs. */
int trainer_state_pairs(const trainer *t);
/* Prepares a freshly created trainer for a checkpoint's state (cl_ckpt.c): lora_pairs pairs exist;
 * mid_task: task `task` is in progress (its pair and optimizers are set up as trainer_begin_task
 * does, to be overwritten by the checkpoint's values). */
int trainer_resume_at(trainer *t, int task, int mid_task, int lora_pairs);
/* After task `task`: extends every protected matrix's basis by the energy rule (method gorp);
 * prints the basis sizes. */
int trainer_end_task(trainer *t, int task);

#endif
