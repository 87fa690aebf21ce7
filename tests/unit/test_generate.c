/* Greedy decoding with the KV cache (model_generate) must pick the same tokens as recomputing the
 * whole sequence with model_forward at every step, and stop at EOS; for GQA and plain heads, and
 * with LoRA pairs on every linear (decoding runs the adapters through the training layer without
 * keeping their activations). A batch of prompts of different lengths, one of them stopping early
 * at EOS, must decode to the same tokens as each prompt alone (B = 1). */
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
  CHECK(!model_generate(&m, &prompt, &n_prompt, 1, MAX_NEW, -1, out, &n_out) && n_out == MAX_NEW,
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
  /* with eos = the second generated token, decoding stops after the first */
  int n_eos = 0;
  CHECK(!model_generate(&m, &prompt, &n_prompt, 1, MAX_NEW, out[1], out, &n_eos) &&
            n_eos == (out[0] == out[1] ? 0 : 1),
        "%s: eos stops decoding (%d ids)", name, n_eos);
  printf("%s KV-cache greedy decoding equals full recomputation (%s)\n",
         first_diff < 0 ? "PASS" : "FAIL", name);
  if (with_lora) lora_free(&lo);
  model_free(&m);
}

/* N_BATCH prompts of different lengths decoded together against each decoded alone, with an eos
 * that one prompt meets early (so the batch shrinks while the others go on). */
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
  /* eos: prompt 1's fourth new id when it runs to the end; no other prompt may stop at once */
  int alone[N_BATCH][MAX_NEW], n_alone[N_BATCH], eos = -1, rc = 0;
  rc |= model_generate(&m, &prompts[1], &lens[1], 1, MAX_NEW, -1, alone[1], &n_alone[1]);
  eos = alone[1][3];
  int stopped = 0, full = 0;
  for (int b = 0; b < N_BATCH; b++) {
    rc |= model_generate(&m, &prompts[b], &lens[b], 1, MAX_NEW, eos, alone[b], &n_alone[b]);
    stopped += n_alone[b] < MAX_NEW;
    full += n_alone[b] == MAX_NEW;
  }
  CHECK(!rc && stopped && full, "%s: eos %d stops %d prompts, %d run to the end", name, eos,
        stopped, full);
  int together[N_BATCH * MAX_NEW], n_together[N_BATCH];
  /* twice: the second call reuses the caches of the first */
  for (int rep = 0; rep < 2; rep++) {
    memset(together, 0xff, sizeof(together));
    CHECK(!model_generate(&m, prompts, lens, N_BATCH, MAX_NEW, eos, together, n_together),
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
  printf("%d passed, %d failed\n", n_pass, n_fail);
  return n_fail != 0;
}
