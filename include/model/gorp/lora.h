/* LoRA adapters on the decoder's linears (O-LoRA style stacking): a target linear computes
 *   y = x W^T + (alpha / r) * sum_p (drop(x) A_p^T) B_p^T
 * over the pairs p = 0..n_pairs-1 of earlier tasks (frozen) and the current one (trained). All
 * pairs share one dropout mask per target, drawn from the counter-based generator so that it does
 * not depend on the rank layout. B is stored transposed (Bt_p = B_p^T, r x out) so that each pair's
 * block is contiguous; files hold B as (out, r) like PEFT.
 * Memory: one allocation of max_pairs blocks; the active pair's gradients are one block.
 * Tensor parallelism (docs/PARALLEL.md): adapters follow their base linear's shard. On a
 * column-parallel base (q, k, v, gate, up) B holds the base's block of output rows and A is
 * replicated; on a row-parallel base (o, down) A holds the base's block of input columns and B is
 * replicated. Every rank then computes its part exactly as on one rank: the adapter's partial
 * outputs join the base's in the model's sums. The replicated factor's gradient is partial on each
 * rank (it sees one block of the other factor) and lora_tp_sum_grads sums it. Initial values and
 * dropout masks are drawn by logical index, so any layout trains the same adapters.
 * The functions that make matrix products (forward, backward, merge) return the backend's status,
 * which the compiler makes every caller use.
 * Not for: optimizers (optim.h) or projections of the gradients (gorp_basis.h). */
#ifndef GORP_LORA_H
#define GORP_LORA_H

#include "gorp/model.h"

#include <stdint.h>

enum { LORA_Q, LORA_K, LORA_V, LORA_O, LORA_GATE, LORA_UP, LORA_DOWN, LORA_N_TARGETS };
/* a target is a linear of the layer, numbered as model_linear_tensor numbers them */
_Static_assert((int)LORA_N_TARGETS == (int)MODEL_N_LINEARS, "LoRA targets are the model's linears");

/* "q", "k", "v", "o", "gate", "up", "down"; the HF module names follow from them. */
extern const char *const lora_target_names[LORA_N_TARGETS];
/* "self_attn.q_proj", ..., "mlp.down_proj" */
extern const char *const lora_module_names[LORA_N_TARGETS];

/* Parses "q,v" (or "all") into a bit set; the message names key and the bad entry. */
int lora_parse_targets(unsigned *bits, char *const *names, int n, const char *key);

typedef struct lora {
  unsigned targets; /* bit t: target t carries adapters */
  int r;
  float alpha;
  float scale;   /* alpha / r */
  float dropout; /* probability; 0 = none */
  int L;
  int in[LORA_N_TARGETS], out[LORA_N_TARGETS];           /* this rank's shapes (the base's shard) */
  int in_full[LORA_N_TARGETS], in_off[LORA_N_TARGETS];   /* logical input axis, our first column */
  int out_full[LORA_N_TARGETS], out_off[LORA_N_TARGETS]; /* logical output axis, our first row */
  const struct dist *tp;                                 /* the model's TP group, or NULL */
  /* the ops table of the memory the adapters live in, the model's (model.ops): their arrays below
   * are allocated, and their dropout and zeroing run, through it, as the model's; what lora.c
   * computes on the host (A's initialisation, the rows' dropout keys) it uploads */
  const backend_ops *ops;
  size_t off[LORA_N_TARGETS]; /* per layer: offset of target t's A inside a layer's part */
  size_t layer_size;          /* floats of one layer's part of a pair block */
  size_t pair_size;           /* floats of one pair block: L * layer_size */
  int max_pairs, n_pairs;     /* the pair n_pairs-1 trains */
  float *params;              /* (max_pairs, pair_size) */
  float *grads;               /* (pair_size) the active pair's gradients */
  /* activations for the backward pass, sized by lora_reserve */
  int N;               /* capacity in rows (B*T) */
  float *h;            /* (L, LORA_N_TARGETS, N, r) drop(x) A_active^T per target */
  float *xd;           /* (N, max in) scratch: drop(x) */
  float *dh;           /* (N, r) scratch */
  float *dxd;          /* (N, max in) scratch */
  uint64_t *row_keys;  /* (N) the dropout mask's key of each row (lora.c) */
  uint64_t *host_keys; /* (N) host: row_keys' values, computed there */
} lora;

/* Dropout state of one training step: masks are a pure function of (seed, step_key, layer,
 * target, example id, position, feature). */
typedef struct lora_dropout_ctx {
  uint64_t seed, step_key;
  const int64_t *example_ids; /* (B) global index of each batch row */
  int T;                      /* positions per row */
} lora_dropout_ctx;

/* Adapters for m's linears (m's shard under TP). */
int lora_create(lora *lo, const model *m, unsigned targets, int r, float alpha, float dropout,
                int max_pairs);
void lora_free(lora *lo);
/* Starts a new trainable pair (A Kaiming-uniform as PEFT, bound 1/sqrt(in); B zero); with
 * reuse (seqlora) after the first pair, keeps training the same one. */
int lora_begin_task(lora *lo, uint64_t seed, int task, int reuse);
int lora_reserve(lora *lo, int N);
/* A_p (r, in) and Bt_p (r, out) of pair p at (layer, target); grads: the active pair's. */
float *lora_A(const lora *lo, const float *base, int layer, int target);
float *lora_Bt(const lora *lo, const float *base, int layer, int target);
const float *lora_pair(const lora *lo, int p); /* start of pair p's block */

/* out (N, out) += LoRA term of inp (N, in) at (layer, target); saves h for backward when
 * training (dropout ctx non-NULL or save != 0). */
GORP_WUR int lora_forward_add(lora *lo, float *out, const float *inp, int layer, int target, int N,
                              const lora_dropout_ctx *d, int save);
/* dinp (N, in) += LoRA part of d(out)/d(inp); the active pair's A and Bt gradients += . */
GORP_WUR int lora_backward(lora *lo, float *dinp, const float *dout, const float *inp, int layer,
                           int target, int N, const lora_dropout_ctx *d);

/* The LoRA target that tensor t of m is (its layer in *layer), or -1 for a tensor that is no target
 * linear (embedding, norms, head) or whose target carries no adapters. */
int lora_tensor_target(const lora *lo, const model *m, const param_tensor *t, int *layer);
/* w (out, in) += (alpha / r) * sum over every pair p of B_p A_p: this rank's shard of the base
 * weight at (layer, target) as the model holds it, merged with the pairs' factors as this rank
 * holds them. Under TP the factors follow the shard (see above), so the merge is local: no
 * communication. Dropout plays no part (evaluation has none). */
GORP_WUR int lora_merge(const lora *lo, float *w, int layer, int target);

/* Sums over the TP group the active pair's gradients of the replicated factors (A of the
 * column-parallel targets, B of the row-parallel ones). No-op on one rank. */
int lora_tp_sum_grads(lora *lo);
/* 1 when factor A (which = 0) or B (which = 1) of target t is split over the TP group. */
int lora_factor_split(const lora *lo, int t, int which);

/* O-LoRA's regulariser on the active pair (Wang et al. 2023, as released):
 *   lambda1 * sum_{earlier pairs p, layers, targets} sum_jk |(A_p A_new^T)_jk|
 *   + lambda2 * sum_{new A and B matrices} ||X||_F
 * Sets *value and adds its gradient to lo->grads (|x| and ||X|| have gradient 0 at 0). Under TP
 * the overlaps and norms of split factors are summed over the group (collective). */
int lora_olora_penalty(lora *lo, float lambda1, float lambda2, double *value);
/* N-LoRA's regulariser: lambda * sum |x| over the active pair's A and B; value, gradient added. */
double lora_l1_penalty(lora *lo, float lambda);

#endif
