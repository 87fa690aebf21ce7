/* The trainer's part of the state table (trainer.h trainer_state_describe): the LoRA pairs, GORP's
 * bases, and the optimizers' states (AdamW of seqft/mtl and of the active pair, the full-rank
 * targets' rank-k or plain Adam), each with the logical shape a checkpoint stores
 * (docs/CHECKPOINT.md) and this rank's blocks by the split rules of model_state.h and
 * optim_lowrank.h, so that a checkpoint saved under one TP/DP layout resumes under any other.
 * Not for: reading or writing them (ckpt.c), preparing a trainer to receive them
 * (trainer_resume_at). */
#include "gorp/model_state.h"
#include "gorp/trainer.h"

#include "gorp/err.h"

#include <stdio.h>
#include <stdlib.h>

/* AdamW's step (attribute of obj) and moments obj/exp_avg, obj/exp_avg_sq of logical shape dims
 * (ndim), this rank's n blocks of them. */
static int adamw_describe(state_table *t, const char *obj, adamw *o, int ndim, const uint64_t *dims,
                          const state_block *blocks, int n) {
  char name[STATE_NAME_MAX];
  GORP_CALL(state_add_scalar(t, obj, "step", STATE_LONG, &o->step));
  snprintf(name, sizeof(name), "%s/exp_avg", obj);
  GORP_CALL(state_add_tensor(t, name, STATE_FLOAT, ndim, dims, blocks, n, o->m, NULL));
  snprintf(name, sizeof(name), "%s/exp_avg_sq", obj);
  return state_add_tensor(t, name, STATE_FLOAT, ndim, dims, blocks, n, o->v, NULL);
}

/* An AdamW over a 1-D tensor of `total` elements made of n blocks (then freed). */
static int adamw_describe_blocks(state_table *t, const char *obj, adamw *o, state_block *blocks,
                                 int n, uint64_t total) {
  const int rc = adamw_describe(t, obj, o, 1, &total, blocks, n);
  free(blocks);
  return rc;
}

/* A basis /gorp/<name> as its logical (axis, r) matrix (this rank's rows of it under TP), with r
 * and each task's end column as attributes. */
static int space_describe(state_table *t, const char *name, gorp_space *s, int n_tasks) {
  char obj[STATE_NAME_MAX], ds[STATE_NAME_MAX + 8];
  snprintf(obj, sizeof(obj), "/gorp/%s", name);
  GORP_CALL(state_add_scalar(t, obj, "columns", STATE_INT, &s->r));
  for (int k = 0; k < n_tasks; k++) {
    char key[32];
    snprintf(key, sizeof(key), "task_%02d_end", k + 1);
    GORP_CALL(state_add_scalar(t, obj, key, STATE_INT, &s->task_end[k]));
  }
  snprintf(ds, sizeof(ds), "%s/basis", obj);
  const uint64_t dims[2] = {(uint64_t)s->axis, (uint64_t)s->cap};
  const state_block b = {.rows = dims[0],
                         .r0 = (uint64_t)s->row_off,
                         .nr = (uint64_t)s->len,
                         .split = s->len != s->axis};
  state_entry *e;
  GORP_CALL(state_add_tensor(t, ds, STATE_FLOAT, 2, dims, &b, 1, s->S, &e));
  e->live_cols = &s->r; /* S (len, cap) holds r columns in use */
  return GORP_OK;
}

/* A full-rank target's optimizer (/optim/full/<tensor>) and its basis. */
static int full_describe(state_table *t, trainer *tr, full_target *f) {
  const char *tname = tr->m->tensors[f->tensor].name;
  char obj[STATE_NAME_MAX], name[STATE_NAME_MAX + 16];
  snprintf(obj, sizeof(obj), "/optim/full/%s", tname);
  if (f->low.proj) {
    /* logical shapes; under TP (optim_lowrank.h) Q is whole, P holds the weight's rows when
     * they are split, the moments the weight's rows (Q on the right) or columns (P on the left)
     * when that axis is split */
    lowrank_adam *o = &f->low;
    const dist_matrix *wd = &f->dm;
    const int rows_split = o->m != wd->m, cols_split = o->n != wd->n;
    const uint64_t dp[2] = {(uint64_t)(o->right ? o->k : wd->m),
                            (uint64_t)(o->right ? wd->n : o->k)};
    const uint64_t dr[2] = {(uint64_t)(o->right ? wd->m : o->k),
                            (uint64_t)(o->right ? o->k : wd->n)};
    const state_block bp = {.rows = dp[0],
                            .cols = dp[1],
                            .r0 = o->right ? 0 : (uint64_t)(rows_split ? wd->local_off : 0),
                            .nr = o->right ? dp[0] : (uint64_t)o->m,
                            .nc = dp[1],
                            .split = !o->right && rows_split};
    const state_block br = {.rows = dr[0],
                            .cols = dr[1],
                            .r0 = o->right && rows_split ? (uint64_t)wd->local_off : 0,
                            .nr = o->right ? (uint64_t)o->m : dr[0],
                            .c0 = !o->right && cols_split ? (uint64_t)wd->local_off : 0,
                            .nc = o->right ? dr[1] : (uint64_t)o->n,
                            .split = o->right ? rows_split : cols_split};
    GORP_CALL(state_add_scalar(t, obj, "step", STATE_LONG, &o->step));
    GORP_CALL(state_add_scalar(t, obj, "svd_counter", STATE_U64, &o->opts.counter));
    snprintf(name, sizeof(name), "%s/projection", obj);
    GORP_CALL(state_add_tensor(t, name, STATE_FLOAT, 2, dp, &bp, 1, o->proj, NULL));
    snprintf(name, sizeof(name), "%s/exp_avg", obj);
    GORP_CALL(state_add_tensor(t, name, STATE_FLOAT, 2, dr, &br, 1, o->mom, NULL));
    snprintf(name, sizeof(name), "%s/exp_avg_sq", obj);
    GORP_CALL(state_add_tensor(t, name, STATE_FLOAT, 2, dr, &br, 1, o->var, NULL));
  } else if (f->plain.m) { /* moments of the weight's shape, held like the weight */
    const param_tensor *pt = &tr->m->tensors[f->tensor];
    const uint64_t d[2] = {(uint64_t)pt->full[0], (uint64_t)pt->full[1]};
    const state_block b = model_tensor_block(pt, 0);
    GORP_CALL(adamw_describe(t, obj, &f->plain, 2, d, &b, 1));
  }
  if (f->space.S) GORP_CALL(space_describe(t, tname, &f->space, tr->n_tasks));
  return GORP_OK;
}

int trainer_state_describe(trainer *tr, int optim, state_table *t) {
  if (tr->has_lora) GORP_CALL(lora_state_describe(&tr->lo, "/lora", t));
  if (tr->lora_space)
    for (int l = 0; l < tr->lo.L; l++)
      for (int tg = 0; tg < LORA_N_TARGETS; tg++) {
        if (!(tr->lo.targets >> tg & 1)) continue;
        char name[128];
        snprintf(name, sizeof(name), "model.layers.%d.%s.lora_A", l, lora_module_names[tg]);
        GORP_CALL(space_describe(t, name, &tr->lora_space[l * LORA_N_TARGETS + tg], tr->n_tasks));
      }
  for (int i = 0; i < tr->n_full; i++) GORP_CALL(full_describe(t, tr, &tr->full[i]));
  if (!optim) return GORP_OK; /* at a task boundary the next task starts fresh moments */
  state_block *blocks;
  int n;
  uint64_t total;
  if (tr->has_seqft) {
    GORP_CALL(model_state_grad_blocks(tr->m, &blocks, &n, &total));
    GORP_CALL(adamw_describe_blocks(t, "/optim/all", &tr->opt_all, blocks, n, total));
  }
  if (tr->has_lora) {
    GORP_CALL(lora_state_grad_blocks(&tr->lo, &blocks, &n, &total));
    GORP_CALL(adamw_describe_blocks(t, "/optim/lora", &tr->opt_lora, blocks, n, total));
  }
  return GORP_OK;
}

int trainer_state_pairs(const trainer *tr) {
  return tr->has_lora ? tr->lo.n_pairs : 0;
}
