/* A model whose arrays live in another backend's memory (model.ops = the CUDA table: weights
 * uploaded, every op of the step run by the table, results downloaded) computes the fp32 training
 * step of the same model in host memory: the loss, the logits and every gradient within the
 * conformance test's tolerances, for each head mode with targets, with and without loss weights,
 * keeping every layer or recomputing them, and with LoRA adapters on every linear (two pairs, one
 * frozen, dropout drawn on the device); and greedy decoding from the key/value caches in that
 * memory gives the host's ids. Adapters in another memory than the model's are refused. Exits 77
 * (skipped) where the CUDA backend cannot open (no GPU); test_model_device_cuda_emu runs it on the
 * emulated kernels (tests/cuda_emu), whose device memory host code cannot touch: a host read or
 * write of the model's arrays that skips the table faults. Not for: the values themselves (the
 * PyTorch tests check the host model); LoRA and the trainer (host memory so far). */
#include "testutil.h"

#include "gorp/backend.h"
#include "gorp/lora.h"
#include "gorp/model.h"
#include "gorp/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, T = 12, V = 40, L = 2, N = B * T };

static const model_config cfg = {.vocab_size = V,
                                 .hidden_size = 32,
                                 .intermediate_size = 48,
                                 .num_layers = L,
                                 .num_heads = 4,
                                 .num_kv_heads = 2,
                                 .head_dim = 8,
                                 .max_seq = 16,
                                 .rms_eps = 1e-5f,
                                 .rope_theta = 10000.0f};

/* A 7B run's layout: every matrix frozen and stored in bf16, the norms trained. */
static int prep_bf16(model *m, const void *unused) {
  (void)unused;
  for (int i = 0; i < m->n_tensors; i++)
    if (m->tensors[i].ndim == 2 && model_set_trainable(m, i, 0)) return 1;
  return model_bf16_frozen(m);
}

/* m in be's memory with prep's layout and random weights (h's: host memory, d's: uploaded from
 * host's), its gradients allocated. */
static int make_model(model *m, const backend_ops *be, const model_prep *prep, const model *host) {
  if (model_plan_tp(m, &cfg, NULL)) return 1;
  m->ops = be;
  if (model_alloc_params(m, prep) || model_alloc_grads(m)) return 1;
  if (!host) {
    model_init_random(m, 5, 0.3f, 0.3f);
    return 0;
  }
  return be->upload(m->params, host->params, host->n_params * sizeof(float)) ||
         be->upload(m->params16, host->params16, host->n_params16 * sizeof(uint16_t));
}

/* One step on m: zeroed gradients, forward with targets, backward; its logits (R x V, host) into
 * logits (room for N x V). */
static int step(model *m, const int *tokens, const int *targets, const model_step *s, float *loss,
                float *logits) {
  if (model_zero_grads(m) || model_forward(m, tokens, targets, s, B, T, 0.0f, loss)) return 1;
  const size_t bytes = (size_t)m->acts.n_head_rows * V * sizeof(float);
  if (m->ops->download(logits, model_logits(m), bytes)) return 1;
  return model_backward(m);
}

/* Runs the step s on h and d and checks d's loss, logits and gradients (the model's and, with
 * adapters, LoRA's) against h's. */
static void compare(const char *what, model *h, model *d, const model_step *s, const int *tokens,
                    const int *targets) {
  const backend_ops *be = d->ops;
  float *lh = xcalloc((size_t)N * V, sizeof(float)), *ld = xcalloc((size_t)N * V, sizeof(float));
  float *gd = xcalloc(h->n_grads, sizeof(float));
  const size_t nl = h->lora ? h->lora->pair_size : 0;
  float *gl = xcalloc(nl + 1, sizeof(float));
  float loss_h = NAN, loss_d = NAN;
  if (h->lora) CHECK(!h->lora->ops->zero(h->lora->grads, nl * sizeof(float)), "zero");
  if (d->lora) CHECK(!d->lora->ops->zero(d->lora->grads, nl * sizeof(float)), "zero");
  const int ok = !step(h, tokens, targets, s, &loss_h, lh) &&
                 !step(d, tokens, targets, s, &loss_d, ld) &&
                 !be->download(gd, d->grads, h->n_grads * sizeof(float)) &&
                 (!nl || !be->download(gl, d->lora->grads, nl * sizeof(float)));
  CHECK(ok, "%s: the step on %s", what, be->name);
  if (ok) {
    const int R = h->acts.n_head_rows;
    CHECK(d->acts.n_head_rows == R, "%s: %d head rows on %s, %d on the host", what,
          d->acts.n_head_rows, be->name, R);
    CHECK(fabsf(loss_d - loss_h) <= 1e-5f * fmaxf(1.0f, fabsf(loss_h)) && loss_h > 0.0f,
          "%s: loss %.7f on %s, %.7f on the host", what, loss_d, be->name, loss_h);
    const double el = rel_diff(ld, lh, (size_t)R * V), eg = rel_diff(gd, h->grads, h->n_grads),
                 ea = nl ? rel_diff(gl, h->lora->grads, nl) : 0.0;
    CHECK(el <= 1e-5, "%s: logits differ by %.2e (relative)", what, el);
    CHECK(eg <= 1e-4, "%s: gradients differ by %.2e (relative)", what, eg);
    CHECK(ea <= 1e-4, "%s: LoRA's gradients differ by %.2e (relative)", what, ea);
    printf("%s: loss %.7f, logits within %.1e, gradients within %.1e", what, loss_d, el, eg);
    if (nl) printf(", LoRA's within %.1e", ea);
    printf("\n");
  }
  free(lh), free(ld), free(gd), free(gl);
}

/* lo on m: adapters on every linear, r 2, dropout 0.2, two pairs (the first frozen), every
 * factor drawn from the same stream on every backend (uploaded). */
static int lora_on(lora *lo, model *m) {
  if (lora_create(lo, m, (1u << LORA_N_TARGETS) - 1, 2, 4.0f, 0.2f, 2) ||
      lora_begin_task(lo, 1, 0, 0) || lora_begin_task(lo, 1, 1, 0))
    return 1;
  const size_t n = 2 * lo->pair_size;
  float *p = xcalloc(n, sizeof(float));
  for (size_t i = 0; i < n; i++) p[i] = (float)(0.3 * rng_normal(8, 8, 0, i));
  const int rc = lo->ops->upload(lo->params, p, n * sizeof(float));
  free(p);
  m->lora = lo;
  return rc;
}

enum { NP = 3, NEW = 3 }; /* decoding: prompts, new ids each */

/* 1 when greedy decoding of the NP prompts gives h's NEW ids on d too (both succeed). */
static int same_decoding(model *h, model *d, const int *const *prompts, const int *n_prompt) {
  int out_h[NP * NEW], out_d[NP * NEW], n_h[NP], n_d[NP];
  const int dec_h = model_generate(h, prompts, n_prompt, NP, NEW, NULL, 0, out_h, n_h);
  const int dec_d = model_generate(d, prompts, n_prompt, NP, NEW, NULL, 0, out_d, n_d);
  CHECK(!dec_h && !dec_d, "model_generate on the host and on %s", d->ops->name);
  int same = !dec_h && !dec_d;
  for (int b = 0; b < NP && same; b++) {
    same = n_h[b] == NEW && n_d[b] == NEW;
    for (int i = 0; i < NEW && same; i++) same = out_h[b * NEW + i] == out_d[b * NEW + i];
  }
  return same;
}

int main(int argc, char **argv) {
  const char *name = argc >= 2 ? argv[1] : "cuda";
  capture_begin();
  const int closed = backend_select(name);
  char *why = capture_end();
  if (closed) {
    printf("SKIP %s: %.*s\n", name, (int)strcspn(why, "\n"), why);
    free(why);
    return 77;
  }
  free(why);
  const backend_ops *be = backend_get();

  int tokens[N], targets[N];
  float weights[N];
  for (int i = 0; i < N; i++) {
    tokens[i] = (i * 11 + 5) % V;
    targets[i] = i % T >= 5 ? (i * 7 + 1) % V : -1;
    weights[i] = 0.25f + 0.25f * (float)(i % 3);
  }
  model h, d;
  CHECK(!make_model(&h, backend_host(), NULL, NULL), "host model");
  CHECK(!make_model(&d, be, NULL, &h), "the model in %s memory", be->name);

  const struct {
    const char *what;
    model_head_mode head;
    const float *w;
  } cases[] = {{"every row, loss weights", MODEL_HEAD_ALL, weights},
               {"every row", MODEL_HEAD_ALL, NULL},
               {"the rows with targets, loss weights", MODEL_HEAD_TARGETS, weights},
               {"the rows with targets", MODEL_HEAD_TARGETS, NULL}};
  char what[128];
  for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
    for (int rc = 0; rc < 2; rc++) {
      const model_step s = {.loss_weights = cases[c].w, .head = cases[c].head};
      h.recompute = d.recompute = rc;
      snprintf(what, sizeof(what), "%s%s", cases[c].what, rc ? ", recompute" : "");
      compare(what, &h, &d, &s, tokens, targets);
    }

  lora lo_h, lo_d;
  CHECK(!lora_on(&lo_h, &h) && !lora_on(&lo_d, &d), "LoRA adapters on both models");
  const int64_t ids[B] = {3, 9};
  const lora_dropout_ctx drop = {.seed = 2, .step_key = 77, .example_ids = ids, .T = T};
  for (int rc = 0; rc < 2; rc++) {
    const model_step s = {.dropout = &drop, .loss_weights = weights, .head = MODEL_HEAD_TARGETS};
    h.recompute = d.recompute = rc;
    compare(rc ? "LoRA with dropout, recompute" : "LoRA with dropout", &h, &d, &s, tokens, targets);
  }
  const model_step plain = {.head = MODEL_HEAD_TARGETS};
  compare("LoRA without dropout", &h, &d, &plain, tokens, targets);

  /* adapters must live where the model does */
  d.lora = &lo_h;
  capture_begin();
  const int refused = model_forward(&d, tokens, targets, NULL, B, T, 0.0f, NULL);
  char *msg = capture_end();
  CHECK(refused && strstr(msg, "LoRA adapters in cpu memory"),
        "adapters in host memory on a model in %s memory are refused: %s", be->name, msg);
  free(msg);
  d.lora = &lo_d;
  /* greedy decoding of three prompts of different lengths, with the adapters: the same ids; then
   * the same for the bf16 layout */
  const int *prompts[NP] = {tokens, tokens + 3, tokens + T};
  const int n_prompt[NP] = {5, 9, 2};
  int same = same_decoding(&h, &d, prompts, n_prompt);
  CHECK(same, "decoding on %s gives the host's ids", be->name);
  printf("decoding %d prompts x %d ids: %s\n", NP, NEW, same ? "the same ids" : "other ids");

  /* the bf16 layout with adapters: a training step and decoding */
  model hb, db;
  lora lb_h, lb_d;
  const model_prep bf16 = {prep_bf16, NULL};
  CHECK(!make_model(&hb, backend_host(), &bf16, NULL) && !make_model(&db, be, &bf16, &hb) &&
            !lora_on(&lb_h, &hb) && !lora_on(&lb_d, &db),
        "bf16 models with adapters");
  CHECK(hb.n_params16 > 0 && db.n_params16 == hb.n_params16, "%zu bf16 weights", hb.n_params16);
  const model_step bs = {.dropout = &drop, .loss_weights = weights, .head = MODEL_HEAD_TARGETS};
  compare("bf16 weights, LoRA with dropout", &hb, &db, &bs, tokens, targets);
  same = same_decoding(&hb, &db, prompts, n_prompt);
  CHECK(same, "decoding the bf16 model on %s gives the host's ids", be->name);
  printf("decoding the bf16 model: %s\n", same ? "the same ids" : "other ids");
  lora_free(&lb_h);
  lora_free(&lb_d);
  model_free(&hb);
  model_free(&db);

  lora_free(&lo_h);
  lora_free(&lo_d);
  model_free(&d);
  model_free(&h);
  return tests_finish();
}
