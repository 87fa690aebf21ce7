/* gorp plan's arithmetic: per-rank bytes and FLOPs of one training step for a model shape, a
 * method (what trains, what gorp keeps for it) and a tp x dp layout, without allocating anything.
 *
 * Counts, per rank, in fp32 as gorp stores everything (docs/PLAN.md has every formula):
 *   weights      every tensor; q,k,v,gate,up split on their rows (column-parallel), o,down on
 *                their columns (row-parallel), heads and KV heads over tp; embedding, head and
 *                norms replicated (Megatron, docs/PARALLEL.md)
 *   gradients    trainable tensors only: every tensor (seqft, mtl), the full-rank targets (galore,
 *                gorp: the whole m x n gradient, the rank-k optimizer compresses it afterwards),
 *                the active LoRA pair
 *   LoRA         the pairs stacked after the last task (one per task; seqlora one)
 *   optimizer    AdamW m + v per trainable element; the rank-k Adam's one allocation (Q or P and
 *                four matrices of the compressed gradient's shape: m, v, R, N)
 *   bases        GORP's S (len x cap) per protected matrix at its worst case cap = len (gorp
 *                allocates all cap columns at start), plus a len x len covariance with
 *                activation bases
 *   activations  what the forward pass keeps for the backward pass (model_acts, the LoRA h)
 *   workspace    backward scratch, LoRA scratch, SVD/basis workspace as the trainer reserves it,
 *                the before-update copies, the evaluation KV cache at the planned length
 * Not counted: libraries (MPI, BLAS, HDF5, CUDA), the data set and its encoding, HDF5 buffers of
 * checkpoint writes, allocator overhead.
 * Not for: reading configs or files (cmd_plan.c), deciding a layout. */
#ifndef GORP_PLAN_H
#define GORP_PLAN_H

#include "gorp/model.h"

#include <stdint.h>

struct gorp_config;

/* The part of a config that decides memory: what trains and what gorp keeps for it. */
typedef struct plan_method {
  char name[16];         /* run.method */
  int all_weights;       /* seqft, mtl: every tensor trains with AdamW */
  unsigned lora_targets; /* bit t (LORA_* of lora.h): target t carries adapters; 0 = none */
  int lora_r;
  int lora_pairs;        /* pairs stacked after the last task: n_tasks, or 1 (seqlora) */
  unsigned full_targets; /* galore, gorp: full-rank weights that train */
  int full_lowrank;      /* 1: rank-k projected Adam; 0: plain Adam on the whole matrix */
  int full_stream;       /* full.stream_grad: a rank-k target's gradient held one layer at a time */
  int full_rank;         /* k */
  int bases_lora;        /* gorp: the LoRA A matrices are protected */
  int bases_full;        /* gorp: the full-rank targets are protected */
  int input_axis;        /* gorp.axis = input */
  int activation_bases;  /* gorp.basis_source = activation */
  int n_tasks;
} plan_method;

typedef struct plan_layout {
  int tp, dp;
  int batch;        /* global batch: sequences per optimizer step, split over dp */
  int seq;          /* tokens per sequence */
  int answer;       /* tokens per sequence with a loss (the head's rows), <= seq; 0: every token */
  int recompute;    /* train.recompute: one layer's activations kept, the layers run twice */
  int bf16;         /* model.dtype = bf16: every frozen matrix held in bf16 (2 bytes, counted as
                     * half a float) */
  int trained_bf16; /* model.trained_products = bf16: the trained matrices' products round into
                     * a bf16 scratch */
  int eval_batch;   /* test prompts each rank decodes together (eval.batch_size), >= 1 */
} plan_layout;

enum {
  PLAN_WEIGHTS,
  PLAN_GRADS,
  PLAN_LORA,
  PLAN_OPTIM,
  PLAN_BASES,
  PLAN_ACTS,
  PLAN_WORK,
  PLAN_N_PARTS
};
/* "weights", "gradients", "lora", "optimizer", "bases", "activations", "workspace" */
extern const char *const plan_part_names[PLAN_N_PARTS];

enum { PLAN_MAX_ITEMS = 96 };

/* One line of the breakdown: floats per rank, and whether they are split over tp. */
typedef struct plan_item {
  char what[80];
  int part; /* PLAN_* */
  uint64_t floats;
  int sharded; /* 1: the tp ranks each hold 1/tp of it; 0: every rank holds all of it */
} plan_item;

typedef struct plan {
  model_config cfg;
  plan_method method;
  plan_layout layout;
  int batch_local;                /* sequences on the busiest DP rank: ceil(batch / dp) */
  uint64_t n_params;              /* whole model */
  uint64_t floats[PLAN_N_PARTS];  /* per rank */
  uint64_t sharded[PLAN_N_PARTS]; /* the part of floats[] that is split over tp */
  uint64_t total;                 /* floats per rank, all parts */
  double flops_forward;           /* matmul FLOPs of one forward pass per rank (2 per MAC) */
  double flops_attention;         /* of which the attention T^2 terms */
  double flops_step;              /* forward + backward = 3 x forward (+ the layers' forward
                                   * again under recompute) */
  double macs_token;              /* multiply-adds of the linears and LoRA pairs per token */
  int n_items;
  plan_item items[PLAN_MAX_ITEMS];
} plan;

/* Refuses a tp that does not divide num_heads, num_kv_heads or intermediate_size (the tensors
 * split over tp), naming the key; tp and dp must be >= 1. */
int plan_check_layout(const model_config *cfg, int tp, int dp);
/* Fills p for the model shape, method and layout (checked as above; seq must not exceed
 * cfg->max_seq). Allocates nothing. */
int plan_compute(plan *p, const model_config *cfg, const plan_method *m, const plan_layout *lay);
/* FLOPs per rank of evaluating one prompt of `prompt` ids that decodes `new_ids` ids (prefill,
 * then one position per id after the first); the linears, attention scores and head only. */
double plan_prompt_flops(const plan *p, int prompt, int new_ids);
/* The method description of a loaded config (run.method, lora.*, full.*, gorp.*, data tasks), with
 * the trainer's refusals (lora.targets = none outside galore/gorp, nothing to train) naming the
 * keys. */
int plan_method_from_config(plan_method *m, const struct gorp_config *c);

#endif
