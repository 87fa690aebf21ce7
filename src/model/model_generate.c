/* Greedy decoding of a batch of prompts with a key/value cache per prompt: each prompt goes through
 * model_forward on its own (GEMMs over its positions) and its keys/values are copied into its
 * cache; then every step takes one new position of each unfinished prompt through the layer that
 * training runs (model_layer_forward), whose attention reads the caches (attention_decode). A
 * prompt stops at any id of a stop set (the model's end ids, model_stop_ids, and the caller's).
 * Not for: sampling other than greedy, or the layer's arithmetic (model.c, ops.c). */
#include "gorp/model.h"

#include "model_layer.h"

#include "gorp/err.h"
#include "gorp/lora.h"
#include "gorp/ops.h"

#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Sizes the caches for B sequences of S positions and a step's scratch for B rows, once; later
 * calls grow them only when a batch needs more. */
static int kv_reserve(model *m, int B, int S) {
  model_kv *kv = &m->kv;
  if (model_dims_fit(kv->k != NULL, kv->B, kv->S, &B, &S)) return GORP_OK;
  const model_config *c = &m->cfg;
  const size_t L = c->num_layers, C = c->hidden_size, F = m->F_loc,
               QD = (size_t)m->H_loc * c->head_dim, KD = (size_t)m->KV_loc * c->head_dim,
               V = c->vocab_size, half = c->head_dim / 2, group = m->H_loc / m->KV_loc;
  const int n_att = omp_get_max_threads();
  size_t cache;
  if (__builtin_mul_overflow(L * KD, (size_t)B * S, &cache))
    GORP_ERR(GORP_EINPUT, "a key/value cache of %d prompts x %d positions is too large", B, S);
  struct {
    float **ptr;
    size_t n;
  } parts[] = {{&kv->k, cache},        {&kv->v, cache},        {&kv->x, B * C},
               {&kv->xmid, B * C},     {&kv->xout, B * C},     {&kv->ln, B * C},
               {&kv->rstd, B},         {&kv->q, B * QD},       {&kv->knew, B * KD},
               {&kv->vnew, B * KD},    {&kv->atty, B * QD},    {&kv->g, B * F},
               {&kv->u, B * F},        {&kv->h, B * F},        {&kv->logits, B * V},
               {&kv->cos_t, B * half}, {&kv->sin_t, B * half}, {&kv->att, n_att * group * S}};
  const size_t n_parts = sizeof(parts) / sizeof(parts[0]);
  size_t total = 0;
  for (size_t i = 0; i < n_parts; i++)
    if (__builtin_add_overflow(total, parts[i].n, &total) || total > SIZE_MAX / sizeof(float))
      GORP_ERR(GORP_EINPUT, "a key/value cache of %d prompts x %d positions is too large", B, S);
  m->ops->free(kv->k);
  m->ops->free(kv->tok);
  free(kv->host_tok);
  memset(kv, 0, sizeof(*kv));
  float *base;
  GORP_CALL(model_array_alloc(m, (void **)&base, total, sizeof(float), "decoding key/value cache"));
  for (size_t i = 0; i < n_parts; i++) {
    *parts[i].ptr = base;
    base += parts[i].n;
  }
  GORP_CALL(
      model_array_alloc(m, (void **)&kv->tok, 4 * (size_t)B, sizeof(int), "decoding positions"));
  kv->seq = kv->tok + B;
  kv->pos = kv->seq + B;
  kv->rows = kv->pos + B;
  char *host; /* 5 B ints, then (2 B half + B V) floats */
  GORP_ALLOC(host, (5 * (size_t)B + 2 * B * half + B * V) * 4, "decoding's host side");
  kv->host_tok = (int *)host;
  kv->host_seq = kv->host_tok + B;
  kv->host_pos = kv->host_seq + B;
  kv->host_rows = kv->host_pos + B;
  kv->next = kv->host_rows + B;
  kv->host_rope = (float *)(host + 5 * (size_t)B * sizeof(int));
  kv->host_logits = kv->host_rope + 2 * B * half;
  kv->B = B;
  kv->S = S;
  kv->n_att = n_att;
  return GORP_OK;
}

static int argmax(const float *x, int n) {
  int best = 0;
  for (int i = 1; i < n; i++)
    if (x[i] > x[best]) best = i;
  return best;
}

/* Rows 0..n-1 (token host_tok[i] at position host_pos[i] of sequence host_seq[i], cache row
 * host_rows[i]) through every layer, reading and extending the caches; their logits (n, V) into
 * host_logits. */
static int decode_step(model *m, int n) {
  const model_config *c = &m->cfg;
  model_kv *kv = &m->kv;
  const int C = c->hidden_size, D = c->head_dim, half = D / 2, V = c->vocab_size;
  const size_t layer_cache = (size_t)kv->B * kv->S * m->KV_loc * D, nh = (size_t)n * half;
  GORP_CALL(m->ops->upload(kv->tok, kv->host_tok, 4 * (size_t)kv->B * sizeof(int)));
  /* each row at its own position: the rows are one sequence of n positions with these tables */
  for (int i = 0; i < n; i++)
    rope_tables(kv->host_rope + (size_t)i * half, kv->host_rope + nh + (size_t)i * half,
                kv->host_pos[i], 1, D, c->rope_theta);
  GORP_CALL(m->ops->upload(kv->cos_t, kv->host_rope, nh * sizeof(float)));
  GORP_CALL(m->ops->upload(kv->sin_t, kv->host_rope + nh, nh * sizeof(float)));
  GORP_CALL(model_embed(m, kv->x, kv->tok, n));
  float *x = kv->x, *xout = kv->xout;
  for (int l = 0; l < c->num_layers; l++) {
    const layer_acts la = {.x = x,
                           .ln1 = kv->ln,
                           .rstd1 = kv->rstd,
                           .q = kv->q,
                           .k = kv->knew,
                           .v = kv->vnew,
                           .atty = kv->atty,
                           .xmid = kv->xmid,
                           .ln2 = kv->ln,
                           .rstd2 = kv->rstd,
                           .g = kv->g,
                           .u = kv->u,
                           .h = kv->h,
                           .xout = xout};
    const layer_attention at = {.B = 1,
                                .T = n,
                                .cos_t = kv->cos_t,
                                .sin_t = kv->sin_t,
                                .kc = kv->k + (size_t)l * layer_cache,
                                .vc = kv->v + (size_t)l * layer_cache,
                                .seq = kv->seq,
                                .pos = kv->pos,
                                .rows = kv->rows,
                                .S = kv->S,
                                .scratch = kv->att,
                                .n_scratch = kv->n_att};
    GORP_CALL(model_layer_forward(m, l, &la, &at, NULL)); /* no dropout: decoding evaluates */
    float *t = x;
    x = xout;
    xout = t;
  }
  GORP_CALL(m->ops->rmsnorm_forward(kv->ln, kv->rstd, x, m->w.norm, n, C, c->rms_eps));
  GORP_CALL(matmul_forward(kv->logits, kv->ln, model_weight(m, model_head_tensor(m)), n, C, V));
  return m->ops->download(kv->host_logits, kv->logits, (size_t)n * V * sizeof(float));
}

static int in_set(int id, const int *set, int n) {
  for (int i = 0; i < n; i++)
    if (set[i] == id) return 1;
  return 0;
}

int model_set_eos(model *m, const int64_t *ids, int n, const char *what) {
  GORP_CHECK(n >= 1 && n <= MODEL_MAX_EOS, GORP_EINPUT, "%s: holds %d end ids; expected 1 to %d",
             what, n, MODEL_MAX_EOS);
  m->n_eos = 0;
  for (int i = 0; i < n; i++) {
    GORP_CHECK(ids[i] >= 0 && ids[i] < m->cfg.vocab_size, GORP_EINPUT,
               "%s: end id %lld is not a token id in [0, %d)", what, (long long)ids[i],
               m->cfg.vocab_size);
    if (!in_set((int)ids[i], m->eos, m->n_eos)) m->eos[m->n_eos++] = (int)ids[i];
  }
  return GORP_OK;
}

void model_stop_ids(const model *m, const int *extra, int n_extra, int *stop, int *n_stop) {
  *n_stop = 0;
  for (int i = 0; i < m->n_eos + n_extra; i++) {
    const int id = i < m->n_eos ? m->eos[i] : extra[i - m->n_eos];
    if (id >= 0 && !in_set(id, stop, *n_stop)) stop[(*n_stop)++] = id;
  }
}

static int generate(model *m, const int *const *prompts, const int *n_prompt, int B, int max_new,
                    const int *stop, int n_stop, int *out, int *n_out) {
  const model_config *c = &m->cfg;
  const int V = c->vocab_size;
  GORP_CHECK(B >= 1, GORP_EINPUT, "model_generate: no prompts");
  int longest = 0;
  for (int b = 0; b < B; b++) {
    n_out[b] = 0;
    GORP_CHECK(n_prompt[b] >= 1, GORP_EINPUT, "model_generate: empty prompt");
    GORP_CHECK(n_prompt[b] + max_new <= c->max_seq, GORP_EINPUT,
               "prompt of %d tokens + %d new tokens exceeds max_position_embeddings = %d",
               n_prompt[b], max_new, c->max_seq);
    longest = n_prompt[b] > longest ? n_prompt[b] : longest;
  }
  GORP_CALL(kv_reserve(m, B, longest + max_new));
  GORP_CALL(model_scratch16_reserve(m, (size_t)B));
  model_kv *kv = &m->kv;
  const size_t KD = (size_t)m->KV_loc * c->head_dim, layer_cache = (size_t)kv->B * kv->S * KD;
  for (int b = 0; b < B; b++) {
    const int n = n_prompt[b];
    const model_step last_only = {.head = MODEL_HEAD_LAST};
    GORP_CALL(model_forward(m, prompts[b], NULL, &last_only, 1, n, 0.0f, NULL));
    for (int l = 0; l < c->num_layers; l++) {
      const size_t at = (size_t)l * layer_cache + (size_t)b * kv->S * KD,
                   bytes = (size_t)n * KD * sizeof(float);
      GORP_CALL(m->ops->copy(kv->k + at, m->acts.k + (size_t)l * n * KD, bytes));
      GORP_CALL(m->ops->copy(kv->v + at, m->acts.v + (size_t)l * n * KD, bytes));
    }
    GORP_CALL(m->ops->download(kv->host_logits, m->acts.logits, (size_t)V * sizeof(float)));
    kv->next[b] = argmax(kv->host_logits, V);
  }
  if (m->lora) GORP_CALL(lora_reserve(m->lora, B)); /* the adapters' scratch for a step's rows */
  /* step i: a prompt that has its i ids so far stores its next id and, unless that is a stop id
   * or the last, decodes it at position n_prompt + i */
  for (int i = 0; i < max_new; i++) {
    int n = 0;
    for (int b = 0; b < B; b++) {
      if (n_out[b] < i || in_set(kv->next[b], stop, n_stop)) continue;
      out[(size_t)b * max_new + n_out[b]++] = kv->next[b];
      if (i + 1 == max_new) continue;
      kv->host_tok[n] = kv->next[b];
      kv->host_seq[n] = b;
      kv->host_pos[n] = n_prompt[b] + i;
      kv->host_rows[n] = b * kv->S + kv->host_pos[n];
      n++;
    }
    if (!n) break;
    GORP_CALL(decode_step(m, n));
    for (int r = 0; r < n; r++)
      kv->next[kv->host_seq[r]] = argmax(kv->host_logits + (size_t)r * V, V);
  }
  return GORP_OK;
}

/* Decoding multiplies the trained matrices in fp32 whatever model.trained_products says: under
 * bf16 products every decoding step would round each trained matrix whole for a handful of rows
 * (the whole model for seqft and mtl), which costs more than the product it feeds. */
int model_generate(model *m, const int *const *prompts, const int *n_prompt, int B, int max_new,
                   const int *stop, int n_stop, int *out, int *n_out) {
  const int trained_bf16 = m->trained_bf16;
  m->trained_bf16 = 0;
  const int rc = generate(m, prompts, n_prompt, B, max_new, stop, n_stop, out, n_out);
  m->trained_bf16 = trained_bf16;
  return rc;
}
