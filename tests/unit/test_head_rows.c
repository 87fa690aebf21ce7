/* The head's row modes (model_step.head): computing logits only at the rows with a target
 * (training) gives the loss and every gradient of computing them everywhere, with loss weights,
 * LoRA dropout and a tied or untied head; the last-row mode (prefill) gives the last rows' logits
 * and the no-row mode the same activations; a mode that contradicts the targets is refused.
 * Not for: the loss or gradients themselves (the PyTorch reference tests check those). */
#include "testutil.h"

#include "gorp/lora.h"
#include "gorp/model.h"
#include "gorp/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { B = 3, T = 9, V = 29 };

static void check_mode(int tie) {
  const model_config cfg = {.vocab_size = V,
                            .hidden_size = 16,
                            .intermediate_size = 24,
                            .num_layers = 2,
                            .num_heads = 4,
                            .num_kv_heads = 2,
                            .head_dim = 4,
                            .max_seq = 16,
                            .rms_eps = 1e-5f,
                            .rope_theta = 10000.0f,
                            .tie_embeddings = tie};
  int tokens[B * T], targets[B * T];
  float weights[B * T];
  const int64_t ids[B] = {4, 8, 15};
  for (int i = 0; i < B * T; i++) {
    tokens[i] = (i * 7 + 3) % V;
    /* answers at the ends, one sequence without any, one row with weight 0 */
    targets[i] = (i / T != 1 && i % T >= 6) ? (i * 5 + 2) % V : -1;
    weights[i] = 0.5f + 0.1f * (float)(i % 4);
  }
  weights[T - 1] = 0.0f;
  model m;
  CHECK(!model_create(&m, &cfg), "model_create");
  model_init_random(&m, 11, 0.2f, 0.2f);
  CHECK(!model_alloc_grads(&m), "every tensor trainable");
  lora lo;
  CHECK(!lora_create(&lo, &m, 1u << LORA_Q | 1u << LORA_V, 2, 4.0f, 0.3f, 1), "lora_create");
  CHECK(!lora_begin_task(&lo, 1, 0, 0), "lora_begin_task");
  for (size_t i = 0; i < lo.pair_size; i++) lo.params[i] = (float)(0.2 * rng_normal(3, 3, 0, i));
  m.lora = &lo;
  lora_dropout_ctx d = {.seed = 5, .step_key = 9, .example_ids = ids, .T = T};

  float loss[2], *grads[2], *lgrads[2];
  for (int mode = 0; mode < 2; mode++) {
    const model_step step = {
        .dropout = &d, .loss_weights = weights, .head = mode ? MODEL_HEAD_TARGETS : MODEL_HEAD_ALL};
    CHECK(!model_zero_grads(&m), "zero grads");
    memset(lo.grads, 0, lo.pair_size * sizeof(float));
    CHECK(!model_forward(&m, tokens, targets, &step, B, T, 0.0f, &loss[mode]), "forward");
    CHECK(!model_backward(&m), "backward");
    grads[mode] = malloc(m.n_grads * sizeof(float));
    lgrads[mode] = malloc(lo.pair_size * sizeof(float));
    memcpy(grads[mode], m.grads, m.n_grads * sizeof(float));
    memcpy(lgrads[mode], lo.grads, lo.pair_size * sizeof(float));
    if (mode)
      CHECK(m.acts.n_head_rows == 6, "6 rows have targets, the head computed %d",
            m.acts.n_head_rows);
  }
  CHECK(fabsf(loss[1] - loss[0]) <= 1e-6f * fabsf(loss[0]) && loss[0] > 0,
        "tie %d: loss at target rows %.9g vs every row %.9g", tie, loss[1], loss[0]);
  const double eg = rel_diff(grads[1], grads[0], m.n_grads),
               el = rel_diff(lgrads[1], lgrads[0], lo.pair_size);
  CHECK(eg < 1e-6, "tie %d: model gradients at target rows vs every row: %.2e", tie, eg);
  CHECK(el < 1e-6, "tie %d: adapter gradients at target rows vs every row: %.2e", tie, el);
  const param_tensor *head = model_find(&m, tie ? "model.embed_tokens.weight" : "lm_head.weight");
  double hg = 0.0;
  for (size_t i = 0; i < head->numel; i++) hg = fmax(hg, fabs(m.grads[head->grad_offset + i]));
  CHECK(hg > 0, "tie %d: the head's gradient is not zero (%g)", tie, hg);
  for (int mode = 0; mode < 2; mode++) free(grads[mode]), free(lgrads[mode]);

  /* prefill: the last rows' logits; inputs only: the same layer activations, no logits */
  float *all = malloc((size_t)B * T * V * sizeof(float)), *x_all;
  const size_t nx = (size_t)(cfg.num_layers + 1) * B * T * cfg.hidden_size;
  x_all = malloc(nx * sizeof(float));
  CHECK(!model_forward(&m, tokens, NULL, NULL, B, T, 0.0f, NULL), "forward, every row");
  memcpy(all, model_logits(&m), (size_t)B * T * V * sizeof(float));
  memcpy(x_all, m.acts.x, nx * sizeof(float));
  const model_step last = {.head = MODEL_HEAD_LAST}, none = {.head = MODEL_HEAD_NONE};
  CHECK(!model_forward(&m, tokens, NULL, &last, B, T, 0.0f, NULL), "forward, last rows");
  double e = 0.0;
  for (int b = 0; b < B; b++)
    e = fmax(e, rel_diff(model_logits(&m) + (size_t)b * V, all + ((size_t)b * T + T - 1) * V, V));
  CHECK(m.acts.n_head_rows == B && e < 1e-6, "tie %d: last-row logits (%d rows) vs every row: %.2e",
        tie, m.acts.n_head_rows, e);
  CHECK(!model_forward(&m, tokens, NULL, &none, B, T, 0.0f, NULL), "forward, no rows");
  CHECK(m.acts.n_head_rows == 0 && !memcmp(m.acts.x, x_all, nx * sizeof(float)),
        "tie %d: no-row mode keeps the layers' activations", tie);
  free(all);
  free(x_all);

  /* a mode that contradicts the targets is an error, not a silent loss of 0 */
  capture_begin();
  const int bad1 = model_forward(&m, tokens, targets, &last, B, T, 0.0f, loss);
  const model_step want_targets = {.head = MODEL_HEAD_TARGETS};
  const int bad2 = model_forward(&m, tokens, NULL, &want_targets, B, T, 0.0f, NULL);
  free(capture_end());
  CHECK(bad1 && bad2, "head modes that contradict the targets are refused (%d, %d)", bad1, bad2);
  lora_free(&lo);
  m.lora = NULL;
  model_free(&m);
}

int main(void) {
  check_mode(0);
  check_mode(1);
  printf("%d passed, %d failed\n", n_pass, n_fail);
  return n_fail != 0;
}
