/* LoRA adapters inside the model: the adapter term equals its formula; with two stacked pairs
 * (one frozen, one training), dropout on and every target carrying adapters, the active pair's
 * gradients from model_backward match central differences of the model's loss; frozen base
 * weights get no gradient; a new pair starts with B = 0 so it does not change the model; the
 * merged model (test_merge) computes what the model with its pairs computes. */
#include "gorp/err.h"
#include "gorp/lora.h"
#include "gorp/model.h"
#include "gorp/modelfile.h"
#include "gorp/rng.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int n_pass, n_fail;

static void report(int ok, const char *what, double v) {
  printf("%s %-58s %.2e\n", ok ? "PASS" : "FAIL", what, v);
  ok ? n_pass++ : n_fail++;
}

static const model_config cfg = {.vocab_size = 23,
                                 .hidden_size = 12,
                                 .intermediate_size = 20,
                                 .num_layers = 2,
                                 .num_heads = 3,
                                 .num_kv_heads = 1,
                                 .head_dim = 4,
                                 .max_seq = 16,
                                 .rms_eps = 1e-5f,
                                 .rope_theta = 10000.0f};
enum { B = 2, T = 7 };
static int tokens[B * T], targets[B * T];
static const int64_t ids[B] = {5, 11};

static double loss_of(model *m, const lora_dropout_ctx *d) {
  float loss;
  const model_step step = {.dropout = d};
  model_forward(m, tokens, targets, &step, B, T, 0.0f, &loss);
  return loss;
}

/* N-LoRA's (which = 1) or O-LoRA's penalty value, gradients added to lo->grads. */
static double penalty(lora *lo, int which) {
  double v = 0.0;
  if (which) return lora_l1_penalty(lo, 0.4f);
  if (lora_olora_penalty(lo, 0.5f, 0.3f, &v)) return NAN;
  return v;
}

/* The merge that gorp run's model.h5 holds: lora_tensor_target finds the 14 target linears and
 * nothing else; a model whose targets are merged (lora_merge) and that carries no adapters gives
 * the logits of m with its pairs; modelfile_save_merged_tp writes those merged weights bit for bit
 * and the pairs under /adapters (B as (out, r)), and leaves m unchanged. */
static void test_merge(model *m, lora *lo) {
  model merged;
  model_create(&merged, &m->cfg);
  memcpy(merged.params, m->params, m->n_params * sizeof(float));
  int found = 0, layer, st = GORP_OK;
  for (int i = 0; i < m->n_tensors; i++) {
    const int tg = lora_tensor_target(lo, m, &m->tensors[i], &layer);
    if (tg < 0) continue;
    found++;
    if (!st) st = lora_merge(lo, merged.params + m->tensors[i].offset, layer, tg);
  }
  report(found == 2 * LORA_N_TARGETS && !st,
         "lora_tensor_target finds the 14 target linears, lora_merge merges them", found);
  const size_t nl = (size_t)B * T * m->cfg.vocab_size;
  float *want = malloc(nl * sizeof(float)), loss;
  model_forward(m, tokens, targets, NULL, B, T, 0.0f, &loss);
  memcpy(want, model_logits(m), nl * sizeof(float));
  model_forward(&merged, tokens, targets, NULL, B, T, 0.0f, &loss);
  double e = 0.0, big = 0.0;
  for (size_t i = 0; i < nl; i++) {
    e = fmax(e, fabs(model_logits(&merged)[i] - want[i]));
    big = fmax(big, fabs(want[i]));
  }
  /* float rounding of x(W + s BA)^T against xW^T + s (xA^T)B^T: 1.4e-6 of max|logit| measured */
  report(e <= 1e-5 * big, "merged weights without adapters = model with its 3 pairs", e / big);
  free(want);

  char dir[] = "/tmp/gorp_test_lora_XXXXXX", path[64];
  if (!mkdtemp(dir)) exit(2);
  snprintf(path, sizeof(path), "%s/model.h5", dir);
  float *before = malloc(m->n_params * sizeof(float));
  memcpy(before, m->params, m->n_params * sizeof(float));
  const char *names[] = {"a", "b", "c"};
  int rc = modelfile_save_merged_tp(m, lo, "inclora", names, path, NULL, NULL);
  model back;
  rc = rc ? rc : modelfile_load(&back, path);
  report(!rc && !memcmp(back.params, merged.params, m->n_params * sizeof(float)) &&
             !memcmp(before, m->params, m->n_params * sizeof(float)),
         "model file holds the merged weights; m unchanged", rc);
  /* pair 3's B of layer 1's down_proj as (out, r) */
  float Bf[12 * 3];
  const float *Bt = lora_Bt(lo, lora_pair(lo, 2), 1, LORA_DOWN);
  const int out = lo->out[LORA_DOWN], r = lo->r;
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t ds = H5Dopen2(f, "adapters/task_03/model.layers.1.mlp.down_proj.lora_B", H5P_DEFAULT);
  int same = ds >= 0 && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, Bf) >= 0;
  for (int i = 0; same && i < out; i++)
    for (int k = 0; k < r; k++) same &= Bf[i * r + k] == Bt[k * out + i];
  if (ds >= 0) H5Dclose(ds);
  H5Fclose(f);
  report(same && out * r <= 12 * 3, "/adapters/task_03 holds pair 3's B as (out, r)", 0.0);
  if (!rc) model_free(&back);
  remove(path);
  rmdir(dir);
  free(before);
  model_free(&merged);
}

int main(void) {
  /* the dropout masks draw through a key computed once per call: the same draws as rng_bits */
  int same = 1;
  for (uint64_t a = 0; a < 5; a++)
    for (uint64_t b = 0; b < 1000; b += 7)
      same &= rng_bits_keyed(rng_key(9, RNG_STREAM_DROPOUT, a), b) ==
              rng_bits(9, RNG_STREAM_DROPOUT, a, b);
  report(same, "rng_bits_keyed(rng_key(...), b) == rng_bits(..., b)", 0.0);
  for (int i = 0; i < B * T; i++) {
    tokens[i] = (i * 5 + 2) % cfg.vocab_size;
    targets[i] = i % T >= 3 ? (i * 3 + 1) % cfg.vocab_size : -1;
  }
  model m;
  model_create(&m, &cfg);
  model_init_random(&m, 3, 0.3f, 0.3f);
  for (int i = 0; i < m.n_tensors; i++) (void)model_set_trainable(&m, i, 0); /* fp32: cannot fail */
  model_alloc_grads(&m);
  lora lo;
  lora_create(&lo, &m, (1u << LORA_N_TARGETS) - 1, 3, 6.0f, 0.25f, 4);
  m.lora = &lo;

  /* a fresh pair has B = 0: the model's output is unchanged */
  float base_loss, loss;
  model_forward(&m, tokens, targets, NULL, B, T, 0.0f, &base_loss);
  lora_begin_task(&lo, 1, 0, 0);
  model_forward(&m, tokens, targets, NULL, B, T, 0.0f, &loss);
  report(loss == base_loss, "a new pair (B = 0) leaves the loss unchanged", fabs(loss - base_loss));

  /* give the first pair non-zero B, freeze it, start a second pair with non-zero B too */
  for (size_t i = 0; i < lo.pair_size; i++)
    if (lo.params[i] == 0.0f) lo.params[i] = (float)(0.3 * rng_normal(9, 9, 1, i));
  lora_begin_task(&lo, 1, 1, 0);
  float *active = lo.params + lo.pair_size;
  for (size_t i = 0; i < lo.pair_size; i++)
    if (active[i] == 0.0f) active[i] = (float)(0.3 * rng_normal(9, 9, 2, i));

  /* the adapter term of one target equals scale * sum_p x A_p^T B_p^T (no dropout) */
  {
    const int N = 3, in = lo.in[LORA_V], out = lo.out[LORA_V];
    float x[3 * 12], y[3 * 4] = {0}, want[3 * 4] = {0};
    for (int i = 0; i < N * in; i++) x[i] = (float)rng_normal(4, 4, 0, i);
    lora_reserve(&lo, N);
    const int st = lora_forward_add(&lo, y, x, 1, LORA_V, N, NULL, 0);
    for (int p = 0; p < 2; p++) {
      const float *A = lora_A(&lo, lora_pair(&lo, p), 1, LORA_V),
                  *Bt = lora_Bt(&lo, lora_pair(&lo, p), 1, LORA_V);
      for (int n = 0; n < N; n++)
        for (int o = 0; o < out; o++)
          for (int k = 0; k < lo.r; k++) {
            double h = 0.0;
            for (int i = 0; i < in; i++) h += (double)x[n * in + i] * A[k * in + i];
            want[n * out + o] += (float)(lo.scale * h * Bt[k * out + o]);
          }
    }
    double e = 0.0;
    for (int i = 0; i < N * out; i++) e = fmax(e, fabs(y[i] - want[i]));
    report(!st && e < 1e-5, "adapter term = (alpha/r) sum_p x A_p^T B_p^T over 2 pairs", e);
  }

  /* gradients of the active pair against central differences, dropout on */
  lora_dropout_ctx d = {.seed = 7, .step_key = 42, .example_ids = ids, .T = T};
  double l1 = loss_of(&m, &d), l2 = loss_of(&m, &d), l0 = loss_of(&m, NULL);
  report(l1 == l2 && l1 != l0, "dropout masks are a pure function of the key", fabs(l1 - l0));
  memset(lo.grads, 0, lo.pair_size * sizeof(float));
  const model_step step = {.dropout = &d};
  model_forward(&m, tokens, targets, &step, B, T, 0.0f, &loss);
  model_backward(&m);
  double gmax = 0.0, worst = 0.0;
  for (size_t i = 0; i < lo.pair_size; i++) gmax = fmax(gmax, fabs(lo.grads[i]));
  const float h = 1e-2f;
  for (int s = 0; s < 60; s++) {
    size_t i = (size_t)(rng_uniform(5, 5, 5, s) * lo.pair_size);
    float keep = active[i];
    active[i] = keep + h;
    double lp = loss_of(&m, &d);
    active[i] = keep - h;
    double lm = loss_of(&m, &d);
    active[i] = keep;
    double num = (lp - lm) / (2 * h);
    worst = fmax(worst, fabs(num - lo.grads[i]) / (fabs(lo.grads[i]) + 1e-2 * gmax));
  }
  report(worst < 2e-2 && gmax > 0, "active pair's A and B gradients vs central differences", worst);
  int none = 1;
  for (int i = 0; i < m.n_tensors; i++) none &= !m.tensors[i].trainable;
  report(none && m.n_grads == 0 && m.gw.layers[0].wq == NULL,
         "frozen base weights have no gradient storage", (double)m.n_grads);
  /* O-LoRA's and N-LoRA's penalties against central differences of their values, with three
   * pairs (two earlier ones frozen); lambda2 > 0 so the norm term is checked too */
  lora_begin_task(&lo, 1, 2, 0);
  float *third = lo.params + 2 * lo.pair_size;
  for (size_t i = 0; i < lo.pair_size; i++) third[i] = (float)(0.3 * rng_normal(9, 9, 3, i));
  for (int which = 0; which < 2; which++) {
    memset(lo.grads, 0, lo.pair_size * sizeof(float));
    const double v0 = penalty(&lo, which);
    float *g = malloc(lo.pair_size * sizeof(float));
    memcpy(g, lo.grads, lo.pair_size * sizeof(float));
    double worst_pen = 0.0, gm = 0.0;
    for (size_t i = 0; i < lo.pair_size; i++) gm = fmax(gm, fabs(g[i]));
    for (int k = 0; k < 60; k++) {
      size_t i = (size_t)(rng_uniform(6, 6, (uint64_t)which, (uint64_t)k) * lo.pair_size);
      const float hh = 1e-3f, keep = third[i];
      double vals[2];
      for (int sgn = 0; sgn < 2; sgn++) {
        third[i] = keep + (sgn ? -hh : hh);
        vals[sgn] = penalty(&lo, which);
      }
      third[i] = keep;
      const double num = (vals[0] - vals[1]) / (2 * hh);
      worst_pen = fmax(worst_pen, fabs(num - g[i]) / (fabs(g[i]) + 1e-2 * gm));
    }
    report(worst_pen < 2e-2 && v0 > 0,
           which ? "N-LoRA L1 penalty gradient vs central differences"
                 : "O-LoRA orthogonality + norm penalty gradient vs central differences",
           worst_pen);
    free(g);
  }
  test_merge(&m, &lo);
  lora_free(&lo);
  m.lora = NULL;
  model_free(&m);
  printf("%d passed, %d failed\n", n_pass, n_fail);
  return n_fail != 0;
}
