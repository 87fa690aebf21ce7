/* Greedy decoding with the KV cache (model_generate) must pick the same tokens as recomputing the
 * whole sequence with model_forward at every step, and stop at EOS; for GQA and plain heads. */
#include "gorp/model.h"

#include <stdio.h>
#include <stdlib.h>

static int argmax(const float *x, int n) {
  int b = 0;
  for (int i = 1; i < n; i++)
    if (x[i] > x[b]) b = i;
  return b;
}

/* Returns 1 when cached and uncached decoding agree on max_new tokens (no EOS stop). */
static int check(const model_config *cfg, int n_prompt, int max_new) {
  model m;
  if (model_create(&m, cfg)) return 0;
  model_init_random(&m, 42, 0.3f, 0.3f);
  int seq[64], out[64], n_out = 0;
  for (int i = 0; i < n_prompt; i++) seq[i] = (i * 7 + 3) % cfg->vocab_size;
  if (model_generate(&m, seq, n_prompt, max_new, -1, out, &n_out) || n_out != max_new) return 0;
  int ok = 1;
  for (int s = 0; s < max_new; s++) {
    const int T = n_prompt + s;
    if (model_forward(&m, seq, NULL, 1, T, 0.0f, NULL)) return 0;
    const int next = argmax(model_logits(&m) + (size_t)(T - 1) * cfg->vocab_size, cfg->vocab_size);
    if (next != out[s]) ok = 0;
    seq[T] = next;
  }
  /* with eos = the second generated token, decoding stops after the first */
  int n_eos = 0;
  if (model_generate(&m, seq, n_prompt, max_new, out[1], out, &n_eos)) return 0;
  if (out[0] == out[1] ? n_eos != 0 : n_eos != 1) ok = 0;
  model_free(&m);
  return ok;
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
  int pass = 0, fail = 0;
  struct {
    const char *name;
    const model_config *cfg;
  } cases[] = {{"multi-head, untied", &mha}, {"grouped-query, tied", &gqa}};
  for (int i = 0; i < 2; i++) {
    int ok = check(cases[i].cfg, 9, 12);
    printf("%s KV-cache greedy decoding equals full recomputation (%s)\n", ok ? "PASS" : "FAIL",
           cases[i].name);
    ok ? pass++ : fail++;
  }
  printf("%d passed, %d failed\n", pass, fail);
  return fail != 0;
}
