/* What trains and how, per method: which weights get gradients, the LoRA adapters, the
 * full-rank targets' rank-k optimizer, which matrices GORP's shared gradient space protects and
 * from which moments it grows (bases built after each task, projections while learning), and one
 * training step (forward, backward, global-norm clipping, projections, updates). The runner
 * (cl_train.c) and gorp pretrain batch the data and call trainer_step.
 * Callers use the functions below and never write a field: what a run decides (method, MPI
 * layout, loss weights, learning-rate schedule) goes in through trainer_create, trainer_step and
 * trainer_set_lr; checkpoints alone read and restore the state.
 * Not for: batching, evaluation, the maths of the optimizers themselves (optim*.h, lora.h), or of
 * the shared space (gorp_space.h, gorp_basis.h). */
#ifndef GORP_TRAINER_H
#define GORP_TRAINER_H

#include "gorp/config.h"
#include "gorp/dist.h"
#include "gorp/gorp_space.h"
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
  /* full.stream_grad: the rank-k targets' gradients are compressed in model_backward's
   * grad_hook (stream_hook) and never held whole; this step's sum of their squares (this rank's
   * shards, after the data-parallel sum) and the clipping factor their compressed gradients get */
  int streaming;
  double stream_sumsq;
  float clip_coef;
  int input_axis; /* gorp.axis = input */
  int activation; /* gorp.basis_source = activation */
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
  const dist *dist; /* data parallelism (trainer_create); NULL = 1 rank */
  double grad_norm; /* the last step's global gradient norm, before clipping */
} trainer;

/* A model_prep (model.h) for run config c: marks the tensors that c's run.method trains (as
 * trainer_create will) and, with model.dtype = bf16, stores every other matrix in bf16. */
int trainer_prepare_model(model *m, const void *config);

/* Sets up the trainable set of `method` (a run.method name: c->run.method, or "seqft" where every
 * weight trains whatever the config says, as in gorp pretrain) on m (which must outlive the
 * trainer) for n_tasks tasks, the other settings from c; attaches the adapters to m so that
 * evaluation sees them. d: the MPI layout whose dp group shares each batch (NULL: one rank).
 * Refuses a bad combination of keys (naming them) before any training. */
int trainer_create(trainer *t, model *m, const gorp_config *c, const char *method, int n_tasks,
                   const dist *d);
void trainer_free(trainer *t);
/* Before task `task` (0-based): a new adapter pair where the method wants one, fresh optimizer
 * moments (as the benchmark's training script starts each task) with the task's settings. */
int trainer_begin_task(trainer *t, int task, const task_train *tt);
/* One optimizer step on tokens/targets (B, T); example_ids (B) are global example indices (they
 * key the dropout masks), step_key identifies the step (task, step). loss_weights (B, T):
 * per-position weights already normalised by the caller (the loss is then sum w * ce), or NULL:
 * the mean over answer tokens. */
int trainer_step(trainer *t, const int *tokens, const int *targets, const float *loss_weights,
                 const int64_t *example_ids, int B, int T, uint64_t step_key, float *loss);
/* The learning rate of the next steps (a schedule), for a method whose every weight trains with
 * one AdamW (seqft, mtl); refuses the others, whose adapters and full-rank targets keep the rates
 * of lora.lr and full.lr. */
int trainer_set_lr(trainer *t, float lr);
/* The learning rates a task's steps use; 0 where the method has no such weights: lr for the AdamW
 * over every weight (seqft, mtl: tt's rate), lora_lr for the adapters (lora.lr), full_lr for the
 * full-rank targets (full.lr). */
typedef struct trainer_rates {
  double lr, lora_lr, full_lr;
} trainer_rates;
void trainer_rates_of(const trainer *t, const task_train *tt, trainer_rates *r);
/* "lr 2e-05" (seqft, mtl: tt's rate), "lora.lr 0.0002" or "lora.lr 0.0002, full.lr 1e-06": the
 * learning rates a task's steps use, for the task's header line (n bytes of buf). */
void trainer_lr_text(const trainer *t, const task_train *tt, char *buf, size_t n);
/* The global norm of the last step's gradient before clipping (what train.grad_clip compares). */
double trainer_grad_norm(const trainer *t);
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

/* What the runner asks of a trainer (it never reads the fields): the model it trains, its method,
 * whether trainer_observe must see each finished task (activation bases), and the adapters to
 * save (NULL when the method has none). */
model *trainer_model(const trainer *t);
method_kind trainer_method(const trainer *t);
int trainer_observes(const trainer *t);
const lora *trainer_lora(const trainer *t);

#endif
