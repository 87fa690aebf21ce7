/* The one decoder layer forward that training (model_forward over B x T positions) and greedy
 * decoding (model_generate: one new position of each of N sequences) both run, so that decoding
 * computes what training computes. The two differ only in the attention's keys and values, which
 * layer_attention describes. Internal to model.c and model_generate.c (it lives in src/, not
 * include/).
 * Not for: any other caller; the public API is model.h. */
#ifndef GORP_MODEL_LAYER_H
#define GORP_MODEL_LAYER_H

#include "gorp/model.h"

struct lora_dropout_ctx;

/* 1 when buffers allocated for (have_b, have_t) already hold (*b, *t); otherwise 0, with *b and *t
 * raised to cover the allocated sizes too, so that growing one dimension never shrinks the other
 * (the activations' and the KV caches' grow-only reserves). */
static inline int model_dims_fit(int allocated, int have_b, int have_t, int *b, int *t) {
  if (allocated && *b <= have_b && *t <= have_t) return 1;
  if (allocated) {
    if (have_b > *b) *b = have_b;
    if (have_t > *t) *t = have_t;
  }
  return 0;
}

/* One layer's input, saved activations and output for N = B x T rows. Shapes as in model_acts;
 * ln1 and ln2 (and rstd1 and rstd2) may be the same buffer when nothing keeps them. */
typedef struct layer_acts {
  const float *x; /* (N, C) residual entering the layer */
  float *ln1;     /* (N, C) */
  float *rstd1;   /* (N) */
  float *q;       /* (N, H*D) after RoPE */
  float *k;       /* (N, KV*D) after RoPE */
  float *v;       /* (N, KV*D) */
  float *atty;    /* (N, H*D) */
  float *xmid;    /* (N, C) residual after attention */
  float *ln2;     /* (N, C) */
  float *rstd2;   /* (N) */
  float *g, *u;   /* (N, F) */
  float *h;       /* (N, F) silu(g) * u */
  float *xout;    /* (N, C) residual leaving the layer */
} layer_acts;

/* Where the attention of the N = B x T rows finds its keys and values. */
typedef struct layer_attention {
  int B, T;                   /* the rows are B sequences of T positions */
  const float *cos_t, *sin_t; /* (T, D/2) RoPE of position t of every sequence */
  /* kc == NULL (training, prefill): causal attention within each sequence's T rows, the
   * probabilities kept in att (B, H, T, T) for the backward pass */
  float *att;
  /* kc != NULL (decoding, B = 1): row i is position pos[i] of sequence seq[i]; its key and value
   * join that sequence's cache at pos[i] (cache row rows[i] = seq[i] * S + pos[i]) and it
   * attends over positions 0..pos[i] */
  float *kc, *vc; /* (n_seq, S, KV*D) this layer's caches */
  const int *seq, *pos, *rows;
  int S;
  float *scratch; /* (n_scratch, H/KV, S) */
  int n_scratch;
} layer_attention;

/* Sizes m->scratch16 for products over `rows` rows (at most the widest activation or the
 * vocabulary wide) when m's bf16 weights live in another table's memory than the host's; grows
 * only. */
int model_scratch16_reserve(model *m, size_t rows);

/* out (N, C) = the embedding's rows of tokens (N), both in the model's memory: fp32 or bf16 rows
 * through m->ops. */
int model_embed(const model *m, float *out, const int *tokens, int N);

/* Layer l of m on the rows of a, with the adapters' dropout d (NULL: none); the LoRA activations
 * are kept for the backward pass unless the attention decodes. */
int model_layer_forward(model *m, int l, const layer_acts *a, const layer_attention *att,
                        const struct lora_dropout_ctx *d);

#endif
