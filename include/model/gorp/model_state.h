/* The model's part of the state table (state.h): where this rank's shard of each logical tensor
 * lies, and the LoRA pairs and gradient layouts that optimizers and checkpoints describe by it.
 * The block rules of the Megatron split (model.h, lora.h) live here and nowhere else; model files
 * (modelfile.c) and checkpoints (ckpt.c) both use them.
 * Not for: reading or writing the entries (ckpt.h, modelfile.h). */
#ifndef GORP_MODEL_STATE_H
#define GORP_MODEL_STATE_H

#include "gorp/lora.h"
#include "gorp/model.h"
#include "gorp/state.h"

/* The block of tensor t that this rank holds, at element base of a tensor. */
state_block model_tensor_block(const param_tensor *t, uint64_t base);
/* The trainable tensors' logical tensors one after the other, in table order, as one 1-D tensor
 * of *total elements: this rank's shards at their gradients' offsets (model.grads), n_trainable
 * blocks into blocks (malloc'd). */
int model_state_grad_blocks(const model *m, state_block **blocks, int *n, uint64_t *total);

/* Factor A (r, in) (which = 0) or Bt (r, out) (which = 1, B transposed) of target tg as a pair
 * block holds it, at element base of a tensor: this rank's columns when the factor is split (A of
 * a row-parallel target, Bt of a column-parallel one). */
state_block lora_factor_block(const lora *lo, int tg, int which, uint64_t base);
/* The blocks of the factors A (r, in) and B (out, r) of target tg as tensors (r, in_full) and
 * (out_full, r): model.h5's /adapters and a checkpoint's /lora use this layout (PEFT's). */
void lora_factor_blocks(const lora *lo, int tg, state_block *a, state_block *b);
/* Every pair's factors: <prefix>/task_NN/model.layers.L.<module>/A (r, in) and /B (out, r),
 * B held transposed (lora.h). */
int lora_state_describe(lora *lo, const char *prefix, state_table *t);
/* The active pair's gradients (lo->grads) as one 1-D tensor of *total elements: per layer and
 * target, A then Bt flattened, this rank's blocks where its pair block holds the factors. */
int lora_state_grad_blocks(const lora *lo, state_block **blocks, int *n, uint64_t *total);

#endif
