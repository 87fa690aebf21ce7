/* The model's and the LoRA adapters' entries of the state table (model_state.h): the block each
 * rank holds of every logical tensor, by the split rules of model.h and lora.h.
 * Not for: files (ckpt.c, modelfile.c) or optimizers' own entries (trainer_state.c). */
#include "gorp/model_state.h"

#include "gorp/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

state_block model_tensor_block(const param_tensor *t, uint64_t base) {
  state_block b = {.base = base,
                   .rows = (uint64_t)t->full[0],
                   .cols = (uint64_t)t->full[1],
                   .nr = (uint64_t)t->shape[0],
                   .nc = (uint64_t)t->shape[1],
                   .split = t->split != SPLIT_NONE};
  if (t->split == SPLIT_ROWS) b.r0 = (uint64_t)t->split_off;
  if (t->split == SPLIT_COLS) b.c0 = (uint64_t)t->split_off;
  return b;
}

int model_state_grad_blocks(const model *m, state_block **blocks, int *n, uint64_t *total) {
  GORP_ALLOC(*blocks, (size_t)m->n_tensors, "the trainable tensors' blocks");
  *n = 0;
  *total = 0;
  for (int i = 0; i < m->n_tensors; i++) {
    const param_tensor *pt = &m->tensors[i];
    if (!pt->trainable) continue;
    (*blocks)[*n] = model_tensor_block(pt, *total);
    (*blocks)[(*n)++].mem = pt->grad_offset;
    *total += (uint64_t)(pt->full[0] * pt->full[1]);
  }
  return GORP_OK;
}

state_block lora_factor_block(const lora *lo, int tg, int which, uint64_t base) {
  const int *full = which ? lo->out_full : lo->in_full, *off = which ? lo->out_off : lo->in_off,
            *held = which ? lo->out : lo->in;
  return (state_block){.base = base,
                       .rows = (uint64_t)lo->r,
                       .cols = (uint64_t)full[tg],
                       .nr = (uint64_t)lo->r,
                       .c0 = (uint64_t)off[tg],
                       .nc = (uint64_t)held[tg],
                       .split = lora_factor_split(lo, tg, which)};
}

void lora_factor_blocks(const lora *lo, int tg, state_block *a, state_block *b) {
  *a = lora_factor_block(lo, tg, 0, 0);
  *b = (state_block){.rows = (uint64_t)lo->out_full[tg],
                     .cols = (uint64_t)lo->r,
                     .r0 = (uint64_t)lo->out_off[tg],
                     .nr = (uint64_t)lo->out[tg],
                     .nc = (uint64_t)lo->r,
                     .split = lora_factor_split(lo, tg, 1)};
}

int lora_state_describe(lora *lo, const char *prefix, state_table *t) {
  for (int p = 0; p < lo->n_pairs; p++)
    for (int l = 0; l < lo->L; l++)
      for (int tg = 0; tg < LORA_N_TARGETS; tg++) {
        if (!(lo->targets >> tg & 1)) continue;
        const float *pair = lora_pair(lo, p);
        char name[STATE_NAME_MAX];
        snprintf(name, sizeof(name), "%s/task_%02d/model.layers.%d.%s/A", prefix, p + 1, l,
                 lora_module_names[tg]);
        state_block a, b;
        lora_factor_blocks(lo, tg, &a, &b);
        const uint64_t da[2] = {a.rows, a.cols}, db[2] = {b.rows, b.cols};
        GORP_CALL(
            state_add_tensor(t, name, STATE_FLOAT, 2, da, &a, 1, lora_A(lo, pair, l, tg), NULL));
        name[strlen(name) - 1] = 'B';
        state_entry *e;
        GORP_CALL(
            state_add_tensor(t, name, STATE_FLOAT, 2, db, &b, 1, lora_Bt(lo, pair, l, tg), &e));
        e->transposed = 1; /* Bt (r, out) in memory */
      }
  return GORP_OK;
}

int lora_state_grad_blocks(const lora *lo, state_block **blocks, int *n, uint64_t *total) {
  GORP_ALLOC(*blocks, 2 * (size_t)lo->L * LORA_N_TARGETS, "the LoRA gradients' blocks");
  *n = 0;
  *total = 0;
  for (int l = 0; l < lo->L; l++)
    for (int tg = 0; tg < LORA_N_TARGETS; tg++) {
      if (!(lo->targets >> tg & 1)) continue;
      state_block *b = *blocks + *n;
      b[0] = lora_factor_block(lo, tg, 0, *total);
      b[0].mem = (uint64_t)(lora_A(lo, lo->grads, l, tg) - lo->grads);
      *total += (uint64_t)lo->r * lo->in_full[tg];
      b[1] = lora_factor_block(lo, tg, 1, *total);
      b[1].mem = (uint64_t)(lora_Bt(lo, lo->grads, l, tg) - lo->grads);
      *total += (uint64_t)lo->r * lo->out_full[tg];
      *n += 2;
    }
  return GORP_OK;
}
