/* train.recompute (model.recompute): a forward pass that keeps only each layer's input and a
 * backward pass that recomputes each layer give the loss, the logits and every gradient (model
 * weights and LoRA pairs, with LoRA dropout and loss weights) of keeping every layer, bit for bit,
 * while the per-layer buffers shrink to one layer's.
 * Not for: the gradients' values (the PyTorch reference tests and test_lora check those). */
#include "testutil.h"

#include "gorp/lora.h"
#include "gorp/model.h"
#include "gorp/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, T = 11, V = 31, L = 3 };

int main(void) {
  const model_config cfg = {.vocab_size = V,
                            .hidden_size = 16,
                            .intermediate_size = 24,
                            .num_layers = L,
                            .num_heads = 4,
                            .num_kv_heads = 2,
                            .head_dim = 4,
                            .max_seq = 16,
                            .rms_eps = 1e-5f,
                            .rope_theta = 10000.0f};
  int tokens[B * T], targets[B * T];
  float weights[B * T];
  const int64_t ids[B] = {3, 9};
  for (int i = 0; i < B * T; i++) {
    tokens[i] = (i * 11 + 5) % V;
    targets[i] = i % T >= 4 ? (i * 7 + 1) % V : -1;
    weights[i] = 0.25f + 0.25f * (float)(i % 3);
  }
  model m;
  CHECK(!model_create(&m, &cfg), "model_create");
  model_init_random(&m, 5, 0.3f, 0.3f);
  CHECK(!model_alloc_grads(&m), "every tensor trainable");
  lora lo;
  CHECK(!lora_create(&lo, &m, (1u << LORA_N_TARGETS) - 1, 2, 4.0f, 0.2f, 1), "lora_create");
  CHECK(!lora_begin_task(&lo, 1, 0, 0), "lora_begin_task");
  for (size_t i = 0; i < lo.pair_size; i++) lo.params[i] = (float)(0.3 * rng_normal(8, 8, 0, i));
  m.lora = &lo;
  const lora_dropout_ctx d = {.seed = 2, .step_key = 77, .example_ids = ids, .T = T};
  const model_step step = {.dropout = &d, .loss_weights = weights, .head = MODEL_HEAD_TARGETS};

  float loss[2], *grads[2], *lgrads[2];
  size_t floats[2];
  for (int rc = 0; rc < 2; rc++) {
    m.recompute = rc;
    CHECK(!model_zero_grads(&m), "zero grads");
    memset(lo.grads, 0, lo.pair_size * sizeof(float));
    CHECK(!model_forward(&m, tokens, targets, &step, B, T, 0.0f, &loss[rc]), "forward");
    CHECK(!model_backward(&m), "backward");
    grads[rc] = malloc(m.n_grads * sizeof(float));
    lgrads[rc] = malloc(lo.pair_size * sizeof(float));
    memcpy(grads[rc], m.grads, m.n_grads * sizeof(float));
    memcpy(lgrads[rc], lo.grads, lo.pair_size * sizeof(float));
    floats[rc] = (size_t)(m.acts.datt - m.acts.x);
    CHECK(m.acts.kept_layers == (rc ? 1 : L), "recompute %d keeps %d layers", rc,
          m.acts.kept_layers);
  }
  CHECK(loss[0] == loss[1] && loss[0] > 0, "the same loss: %.9g vs %.9g", loss[1], loss[0]);
  CHECK(!memcmp(grads[0], grads[1], m.n_grads * sizeof(float)),
        "model gradients bit for bit with recompute");
  CHECK(!memcmp(lgrads[0], lgrads[1], lo.pair_size * sizeof(float)),
        "LoRA gradients bit for bit with recompute");
  double gmax = 0.0;
  for (size_t i = 0; i < m.n_grads; i++) gmax = fmax(gmax, fabs(grads[0][i]));
  CHECK(gmax > 0, "the gradients are not zero (%g)", gmax);
  /* per layer: xmid, ln1, ln2 (C), q, atty (QD), k, v (KD), g, u, h (F) per row, 2 rstd, and
   * the attention probabilities; L - 1 layers' worth fewer */
  const size_t N = B * T, per_layer = N * (3 * 16 + 2 * 16 + 2 * 8 + 3 * 24 + 2) + B * 4 * T * T;
  CHECK(floats[0] - floats[1] == (L - 1) * per_layer, "recompute saves %zu floats, want %zu",
        floats[0] - floats[1], (L - 1) * per_layer);
  for (int rc = 0; rc < 2; rc++) free(grads[rc]), free(lgrads[rc]);
  lora_free(&lo);
  m.lora = NULL;
  model_free(&m);
  printf("%d passed, %d failed\n", n_pass, n_fail);
  return n_fail != 0;
}
