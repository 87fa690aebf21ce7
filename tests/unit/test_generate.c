/* Greedy decoding with the KV cache (model_generate) must pick the same tokens as recomputing the
 * whole sequence with model_forward at every step, and stop at EOS; for GQA and plain heads, and
 * with LoRA pairs on every linear (decoding runs the adapters through the training layer without
 * keeping their activations). A batch of prompts of different lengths, with a stop set of two ids
 * that one prompt each meets early, must decode to the same tokens as each prompt alone (B = 1).
 * The model's end ids (model_set_eos) are checked and joined with the caller's (model_stop_ids). */
#include "gorp/err.h"
#include "gorp/lora.h"
#include "gorp/model.h"
#include "gorp/rng.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_NEW = 12, N_BATCH = 4 };

static int argmax(const float *x, int n) {
  int b = 0;
  for (int i = 1; i < n; i++)
    if (x[i] > x[b]) b = i;
  return b;
}

/* A random model, with two stacked LoRA pairs of random factors on every linear when lo != NULL
 * (B = 0 would leave the adapters without effect). */
static int make_model(model *m, lora *lo, const model_config *cfg) {
  if (model_create(m, cfg)) return 1;
  model_init_random(m, 42, 0.3f, 0.3f);
  if (!lo) return 0;
  if (lora_create(lo, m, (1u << LORA_N_TARGETS) - 1, 2, 4.0f, 0.0f, 2) ||
      lora_begin_task(lo, 1, 0, 0) || lora_begin_task(lo, 1, 1, 0))
    return 1;
  for (size_t i = 0; i < 2 * lo->pair_size; i++)
    lo->params[i] = 0.3f * (float)(2.0 * rng_uniform(7, 7, 7, i) - 1.0);
  m->lora = lo;
  return 0;
}

/* Cached decoding of one prompt of n_prompt ids against full recomputation, and the EOS stop. */
static void check_single(const char *name, const model_config *cfg, int with_lora, int n_prompt) {
  model m;
  lora lo;
  if (make_model(&m, with_lora ? &lo : NULL, cfg)) {
    CHECK(0, "%s: cannot build the model", name);
    return;
  }
  int seq[64], out[MAX_NEW], n_out = 0;
  for (int i = 0; i < n_prompt; i++) seq[i] = (i * 7 + 3) % cfg->vocab_size;
  const int *prompt = seq;
  CHECK(!model_generate(&m, &prompt, &n_prompt, 1, MAX_NEW, NULL, 0, out, &n_out) &&
            n_out == MAX_NEW,
        "%s: model_generate", name);
  int first_diff = -1;
  for (int s = 0; s < MAX_NEW; s++) {
    const int T = n_prompt + s;
    if (model_forward(&m, seq, NULL, NULL, 1, T, 0.0f, NULL)) break;
    const int next = argmax(model_logits(&m) + (size_t)(T - 1) * cfg->vocab_size, cfg->vocab_size);
    if (next != out[s] && first_diff < 0) first_diff = s;
    seq[T] = next;
  }
  CHECK(first_diff < 0, "%s: KV-cache greedy decoding differs from full recomputation at new id %d",
        name, first_diff);
  /* with the second generated token as the stop id, decoding stops after the first */
  int n_eos = 0;
  CHECK(!model_generate(&m, &prompt, &n_prompt, 1, MAX_NEW, &out[1], 1, out, &n_eos) &&
            n_eos == (out[0] == out[1] ? 0 : 1),
        "%s: a stop id stops decoding (%d ids)", name, n_eos);
  printf("%s KV-cache greedy decoding equals full recomputation (%s)\n",
         first_diff < 0 ? "PASS" : "FAIL", name);
  if (with_lora) lora_free(&lo);
  model_free(&m);
}

/* How many of the MAX_NEW ids of free come before the first of the n_stop ids of stop. */
static int stop_at(const int *free, const int *stop, int n_stop) {
  for (int i = 0; i < MAX_NEW; i++)
    for (int j = 0; j < n_stop; j++)
      if (free[i] == stop[j]) return i;
  return MAX_NEW;
}

/* N_BATCH prompts of different lengths decoded together against each decoded alone, with a stop
 * set of two ids, each the one that ends one of the prompts early (so the batch shrinks while the
 * others go on). */
static void check_batch(const char *name, const model_config *cfg, int with_lora) {
  model m;
  lora lo;
  if (make_model(&m, with_lora ? &lo : NULL, cfg)) {
    CHECK(0, "%s: cannot build the model", name);
    return;
  }
  static const int lens[N_BATCH] = {5, 11, 1, 8};
  int ids[N_BATCH][16];
  const int *prompts[N_BATCH];
  for (int b = 0; b < N_BATCH; b++) {
    for (int i = 0; i < lens[b]; i++) ids[b][i] = (i * 5 + 3 * b + 1) % cfg->vocab_size;
    prompts[b] = ids[b];
  }
  /* each prompt without stops; the stop ids: prompt 1's fourth new id, and the first id of
   * another prompt that comes before both its own and prompt 1's first meeting of the other */
  int free_run[N_BATCH][MAX_NEW], n_free, rc = 0;
  for (int b = 0; b < N_BATCH; b++)
    rc |= model_generate(&m, &prompts[b], &lens[b], 1, MAX_NEW, NULL, 0, free_run[b], &n_free);
  int stop[2] = {free_run[1][3], -1};
  for (int b = 0; b < N_BATCH && stop[1] < 0; b++)
    for (int i = 0; i < MAX_NEW && b != 1 && stop[1] < 0; i++) {
      const int cand[2] = {stop[0], free_run[b][i]};
      if (cand[1] != stop[0] && stop_at(free_run[b], cand, 2) == i &&
          stop_at(free_run[1], cand, 2) == 3)
        stop[1] = cand[1];
    }
  int alone[N_BATCH][MAX_NEW], n_alone[N_BATCH], hit[2] = {0, 0}, full = 0;
  for (int b = 0; b < N_BATCH; b++) {
    rc |= model_generate(&m, &prompts[b], &lens[b], 1, MAX_NEW, stop, 2, alone[b], &n_alone[b]);
    const int expect = stop_at(free_run[b], stop, 2);
    rc |= n_alone[b] != expect || memcmp(alone[b], free_run[b], (size_t)expect * sizeof(int));
    for (int j = 0; j < 2; j++) hit[j] += expect < MAX_NEW && free_run[b][expect] == stop[j];
    full += n_alone[b] == MAX_NEW;
  }
  CHECK(!rc && stop[1] >= 0 && hit[0] && hit[1],
        "%s: stop ids %d and %d end %d and %d prompts there, %d run to the end", name, stop[0],
        stop[1], hit[0], hit[1], full);
  int together[N_BATCH * MAX_NEW], n_together[N_BATCH];
  /* twice: the second call reuses the caches of the first */
  for (int rep = 0; rep < 2; rep++) {
    memset(together, 0xff, sizeof(together));
    CHECK(!model_generate(&m, prompts, lens, N_BATCH, MAX_NEW, stop, 2, together, n_together),
          "%s: batched model_generate", name);
    int same = 1;
    for (int b = 0; b < N_BATCH; b++) {
      same &= n_together[b] == n_alone[b];
      for (int i = 0; same && i < n_alone[b]; i++) same &= together[b * MAX_NEW + i] == alone[b][i];
    }
    CHECK(same, "%s: %d prompts decoded together differ from each decoded alone (call %d)", name,
          N_BATCH, rep + 1);
    if (!rep)
      printf("%s %d prompts decoded together equal each decoded alone (%s)\n",
             same ? "PASS" : "FAIL", N_BATCH, name);
  }
  if (with_lora) lora_free(&lo);
  model_free(&m);
}

/* The model's end ids: 1..MODEL_MAX_EOS ids below vocab_size, repeats dropped; the stop set joins
 * them with the caller's ids (negative ones skipped), each once. */
static void check_end_ids(const model_config *cfg) {
  model m;
  if (model_create(&m, cfg)) {
    CHECK(0, "end ids: cannot build the model");
    return;
  }
  const int64_t good[3] = {2, 5, 2}, big[1] = {cfg->vocab_size}, neg[1] = {-1},
                many[MODEL_MAX_EOS + 1] = {0};
  CHECK(!model_set_eos(&m, good, 3, "test") && m.n_eos == 2 && m.eos[0] == 2 && m.eos[1] == 5,
        "end ids 2, 5, 2 kept as 2, 5 (%d of them)", m.n_eos);
  CHECK(model_set_eos(&m, big, 1, "test") == GORP_EINPUT, "end id = vocab_size refused");
  CHECK(model_set_eos(&m, neg, 1, "test") == GORP_EINPUT, "end id -1 refused");
  CHECK(model_set_eos(&m, many, 0, "test") == GORP_EINPUT, "no end ids refused");
  CHECK(model_set_eos(&m, many, MODEL_MAX_EOS + 1, "test") == GORP_EINPUT, "%d end ids refused",
        MODEL_MAX_EOS + 1);
  CHECK(!model_set_eos(&m, good, 2, "test"), "end ids 2, 5");
  const int extra[4] = {7, -1, 5, 7};
  int stop[MODEL_MAX_EOS + 4], n_stop;
  model_stop_ids(&m, extra, 4, stop, &n_stop);
  CHECK(n_stop == 3 && stop[0] == 2 && stop[1] == 5 && stop[2] == 7,
        "stop set of end ids 2, 5 and extra 7, -1, 5, 7 is 2, 5, 7 (%d ids)", n_stop);
  model_free(&m);
}

int main(void) {
  model_config mha = {.vocab_size = 31,
                      .hidden_size = 24,
                      .intermediate_size = 40,
                      .num_layers = 2,
                      .num_heads = 3,
                      .num_kv_heads = 3,
                      .head_dim = 8,
                      .max_seq = 64,
                      .rms_eps = 1e-5f,
                      .rope_theta = 10000.0f};
  model_config gqa = mha;
  gqa.num_heads = 4, gqa.num_kv_heads = 2, gqa.head_dim = 6, gqa.tie_embeddings = 1;
  struct {
    const char *name;
    const model_config *cfg;
    int lora;
  } cases[] = {{"multi-head, untied", &mha, 0},
               {"grouped-query, tied", &gqa, 0},
               {"grouped-query, LoRA on every linear", &gqa, 1}};
  for (int i = 0; i < 3; i++) {
    check_single(cases[i].name, cases[i].cfg, cases[i].lora, 9);
    check_batch(cases[i].name, cases[i].cfg, cases[i].lora);
  }
  check_end_ids(&mha);
  printf("%d passed, %d failed\n", n_pass, n_fail);
  return n_fail != 0;
}
