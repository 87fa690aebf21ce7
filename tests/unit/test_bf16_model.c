/* bf16 weights (model.dtype = bf16): a model whose frozen matrices are stored in bf16
 *  - holds them in bf16 only (params16) and its norms and trainable matrices in fp32;
 *  - computes the loss, logits and the LoRA and trainable-weight gradients of the fp32 model
 *    holding the same (bf16) values, to bf16 rounding of the activations (a transposed or
 *    misplaced product is O(1) off);
 *  - gives the same numbers, to fp32 summation order, through oneDNN as through the fallback
 *    (both operands widened to fp32 and the sgemm), which checks every product's layout (forward,
 *    input gradient, head, decoding) against the plain path;
 *  - writes bfloat16 datasets that read back bit for bit, widen exactly into an fp32 model, and an
 *    fp32 file rounds to the same bits;
 *  - under model.trained_products = bf16 sends the trained gate's products through bf16 too,
 *    except when decoding;
 *  - refuses to train a bf16 tensor or to store a vector or a trainable tensor in bf16.
 * Not for: agreement with PyTorch (tests/ref/test_bf16_vs_torch.py). */
#include "testutil.h"

#include "gorp/bf16.h"
#include "gorp/lora.h"
#include "gorp/model.h"
#include "gorp/modelfile.h"
#include "gorp/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { B = 2, T = 9, V = 37, L = 2 };

static const model_config cfg = {.vocab_size = V,
                                 .hidden_size = 32,
                                 .intermediate_size = 48,
                                 .num_layers = L,
                                 .num_heads = 4,
                                 .num_kv_heads = 2,
                                 .head_dim = 8,
                                 .max_seq = 32,
                                 .rms_eps = 1e-5f,
                                 .rope_theta = 10000.0f};

/* The run's trainable set: gate_proj of every layer (a GORP full-rank target); bf16 elsewhere. */
static int prep_gate(model *m, const void *unused) {
  (void)unused;
  for (int i = 0; i < m->n_tensors; i++)
    if (model_set_trainable(m, i, 0)) return 1;
  for (int l = 0; l < L; l++)
    if (model_set_trainable(m, model_linear_tensor(l, LORA_GATE), 1)) return 1;
  return model_bf16_frozen(m);
}

/* Copies src's values (fp32 everywhere) into m, rounding into its bf16 tensors. */
static void copy_values(model *m, const model *src) {
  for (int i = 0; i < m->n_tensors; i++) {
    const param_tensor *t = &m->tensors[i];
    const float *x = src->params + src->tensors[i].offset;
    if (t->bf16)
      bf16_round(m->params16 + t->offset, x, t->numel);
    else
      memcpy(m->params + t->offset, x, t->numel * sizeof(float));
  }
}

typedef struct pass {
  float loss;
  float *logits; /* (B*T, V) */
  float *grads;  /* the trainable tensors' */
  float *lgrads; /* the LoRA pair's */
  size_t n_grads, n_lgrads;
} pass;

static void run_pass(model *m, lora *lo, const int *tokens, const int *targets, pass *p) {
  CHECK(!model_alloc_grads(m), "grads");
  m->lora = lo;
  CHECK(!model_zero_grads(m), "zero grads");
  memset(lo->grads, 0, lo->pair_size * sizeof(float));
  CHECK(!model_forward(m, tokens, targets, NULL, B, T, 0.0f, &p->loss), "forward");
  p->logits = malloc((size_t)B * T * V * sizeof(float));
  memcpy(p->logits, model_logits(m), (size_t)B * T * V * sizeof(float));
  CHECK(!model_backward(m), "backward");
  p->n_grads = m->n_grads;
  p->grads = malloc(m->n_grads * sizeof(float));
  memcpy(p->grads, m->grads, m->n_grads * sizeof(float));
  p->n_lgrads = lo->pair_size;
  p->lgrads = malloc(lo->pair_size * sizeof(float));
  memcpy(p->lgrads, lo->grads, lo->pair_size * sizeof(float));
  m->lora = NULL;
}

static void pass_free(pass *p) {
  free(p->logits), free(p->grads), free(p->lgrads);
}

/* The share of rows (positions) of logits (B*T, V) whose max |a - b| is at most tol x max |a|. */
static double rows_agree(const float *a, const float *b, double tol) {
  double s = 0.0;
  for (size_t i = 0; i < (size_t)B * T * V; i++) s = fmax(s, fabs((double)a[i]));
  int ok = 0;
  for (int r = 0; r < B * T; r++) {
    double d = 0.0;
    for (int v = 0; v < V; v++) d = fmax(d, fabs((double)a[r * V + v] - b[r * V + v]));
    ok += d <= tol * s;
  }
  return (double)ok / (B * T);
}

/* Loss, logits and the trainable gradients within tol (relative); with agree_tol > 0 also most
 * positions' logits within agree_tol: two bf16 paths sum in different orders, and where that
 * moves a value across a bf16 rounding boundary the two round it one step apart, so a few
 * positions differ by ~1e-3 and the rest by fp32 noise. */
static void compare(const char *what, const pass *a, const pass *b, double tol, double agree_tol) {
  const double el = fabs((double)a->loss - b->loss) / fabs((double)a->loss);
  const double eg = a->n_grads == b->n_grads ? rel_diff(b->grads, a->grads, a->n_grads) : INFINITY;
  const double elg = rel_diff(b->lgrads, a->lgrads, a->n_lgrads);
  CHECK(el <= tol, "%s: loss %.7g vs %.7g (rel %.1e <= %.0e)", what, b->loss, a->loss, el, tol);
  CHECK(rel_diff(b->logits, a->logits, (size_t)B * T * V) <= tol, "%s: logits rel %.1e", what,
        rel_diff(b->logits, a->logits, (size_t)B * T * V));
  CHECK(eg <= tol, "%s: gate gradients rel %.1e (<= %.0e)", what, eg, tol);
  CHECK(elg <= tol, "%s: LoRA gradients rel %.1e (<= %.0e)", what, elg, tol);
  if (agree_tol > 0) {
    const double share = rows_agree(a->logits, b->logits, agree_tol);
    CHECK(share >= 0.75, "%s: %.0f%% of positions' logits within %.0e (>= 75%%)", what, 100 * share,
          agree_tol);
  }
}

int main(void) {
  int tokens[B * T], targets[B * T];
  for (int i = 0; i < B * T; i++) {
    tokens[i] = (i * 11 + 5) % V;
    targets[i] = i % T >= 3 ? (i * 7 + 1) % V : -1;
  }
  /* the fp32 model, its matrices rounded to bf16 values so that both models hold the same */
  model ref;
  CHECK(!model_create(&ref, &cfg), "model_create");
  model_init_random(&ref, 5, 0.3f, 0.3f);
  for (int i = 0; i < ref.n_tensors; i++) {
    const param_tensor *t = &ref.tensors[i];
    for (size_t j = 0; t->ndim == 2 && j < t->numel; j++) {
      float *x = ref.params + t->offset + j;
      *x = bf16_to_f32(bf16_from_f32(*x));
    }
  }
  for (int i = 0; i < ref.n_tensors; i++) (void)model_set_trainable(&ref, i, 0); /* fp32 */
  for (int l = 0; l < L; l++) (void)model_set_trainable(&ref, model_linear_tensor(l, LORA_GATE), 1);

  model m;
  const model_prep prep = {prep_gate, NULL};
  CHECK(!model_plan_tp(&m, &cfg, NULL) && !model_alloc_params(&m, &prep), "bf16 model");
  copy_values(&m, &ref);
  size_t n16 = 0, n32 = 0;
  for (int i = 0; i < m.n_tensors; i++) *(m.tensors[i].bf16 ? &n16 : &n32) += m.tensors[i].numel;
  CHECK(m.n_params16 == n16 && m.n_params == n32 && n16 > 0 && m.bf16c != NULL,
        "bf16 tensors in params16 (%zu values), the rest in params (%zu)", n16, n32);
  CHECK(m.n_params == (size_t)(2 * L + 1) * 32 + (size_t)L * 48 * 32,
        "fp32 holds the norms and the trainable gate only (%zu values)", m.n_params);
  CHECK(m.w.layers[0].wq == NULL && m.w.layers[0].wg != NULL && m.w.embed == NULL,
        "a bf16 tensor has no fp32 view");

  lora lo;
  CHECK(!lora_create(&lo, &ref, (1u << LORA_Q) | (1u << LORA_V) | (1u << LORA_DOWN), 2, 4.0f, 0.0f,
                     1),
        "lora_create");
  CHECK(!lora_begin_task(&lo, 1, 0, 0), "lora_begin_task");
  for (size_t i = 0; i < lo.pair_size; i++) lo.params[i] = (float)(0.3 * rng_normal(8, 8, 0, i));

  pass p32, p16, pfb;
  run_pass(&ref, &lo, tokens, targets, &p32);
  run_pass(&m, &lo, tokens, targets, &p16);
  /* measured: loss 1e-3, gradients 3.2e-2 of their largest */
  compare("bf16 vs fp32 of the same values", &p32, &p16, 6e-2, 0);
  CHECK(rel_diff(p16.logits, p32.logits, (size_t)B * T * V) > 1e-6,
        "the bf16 model rounds its activations (logits differ from fp32's)");

  /* model.trained_products = bf16: the trained gate's three products round their operands too
   * (its weight already holds bf16 values here, so only the activations and output gradients
   * round): the same numbers to bf16 rounding, not the same bits */
  pass ptp;
  m.trained_bf16 = 1;
  const op_weight wg = model_weight(&m, model_linear_tensor(0, LORA_GATE));
  CHECK(wg.f && !wg.h && wg.cache == m.bf16c, "a trained weight's products go through the cache");
  run_pass(&m, &lo, tokens, targets, &ptp);
  m.trained_bf16 = 0;
  compare("trained products in bf16 vs fp32", &p16, &ptp, 6e-2, 0);
  CHECK(rel_diff(ptp.grads, p16.grads, p16.n_grads) > 1e-6,
        "the gate's gradient is computed from bf16-rounded operands (differs from fp32's)");
  pass_free(&ptp);

  /* the two paths (and SPLIT, which picks between them by rows): the same products from oneDNN
   * and from widened operands through the sgemm */
  const bf16_path first = bf16_gemm_path(m.bf16c);
  CHECK(first == BF16_PATH_ONEDNN || first == BF16_PATH_SGEMM || first == BF16_PATH_SPLIT,
        "auto resolves to a path");
  pass pdn;
  bf16_gemm_free(m.bf16c);
  CHECK(!bf16_gemm_create(&m.bf16c, BF16_PATH_ONEDNN), "the oneDNN path");
  run_pass(&m, &lo, tokens, targets, &pdn);
  bf16_gemm_free(m.bf16c);
  CHECK(!bf16_gemm_create(&m.bf16c, BF16_PATH_SGEMM), "the sgemm path");
  run_pass(&m, &lo, tokens, targets, &pfb);
  /* measured: logits 2.3e-5 of their largest at the worst position */
  compare("oneDNN vs the sgemm fallback", &pdn, &pfb, 1e-2, 1e-5);
  pass_free(&pdn);

  /* decoding reads the same bf16 products (head, layers): both paths give the same ids */
  int out[2][6], n_out[2];
  const int *prompt = tokens;
  const int plen = 5;
  for (int path = 0; path < 2; path++) {
    CHECK(!model_generate(&m, &prompt, &plen, 1, 6, NULL, 0, out[path], &n_out[path]), "generate");
    bf16_gemm_free(m.bf16c);
    CHECK(!bf16_gemm_create(&m.bf16c, path ? first : BF16_PATH_ONEDNN), "next path");
  }
  CHECK(n_out[0] == 6 && n_out[1] == 6 && !memcmp(out[0], out[1], sizeof(out[0])),
        "greedy decoding: the same ids on both paths");
  /* decoding multiplies the trained matrices in fp32 even under trained_products = bf16: the
   * same last-step logits to the bit as without, and the setting is back afterwards */
  float *fp32_logits = malloc((size_t)V * sizeof(float));
  CHECK(!model_generate(&m, &prompt, &plen, 1, 6, NULL, 0, out[0], &n_out[0]), "generate");
  memcpy(fp32_logits, m.kv.logits, (size_t)V * sizeof(float));
  m.trained_bf16 = 1;
  CHECK(!model_generate(&m, &prompt, &plen, 1, 6, NULL, 0, out[1], &n_out[1]), "generate");
  CHECK(!memcmp(fp32_logits, m.kv.logits, (size_t)V * sizeof(float)),
        "decoding under trained_products = bf16 multiplies the trained gate in fp32");
  CHECK(m.trained_bf16 == 1, "model_generate restores model.trained_bf16");
  m.trained_bf16 = 0;
  free(fp32_logits);

  /* files: bf16 datasets, read back bit for bit, widened, and an fp32 file rounded */
  char dir[] = "/tmp/gorp_bf16_XXXXXX", p16f[64], p32f[64];
  CHECK(mkdtemp(dir) != NULL, "tmp dir");
  snprintf(p16f, sizeof(p16f), "%s/m16.h5", dir);
  snprintf(p32f, sizeof(p32f), "%s/m32.h5", dir);
  CHECK(!modelfile_save(&m, p16f, NULL), "save the bf16 model");
  model back, wide, rounded;
  CHECK(!modelfile_load_tp(&back, p16f, NULL, &prep), "load bf16 into bf16");
  CHECK(back.n_params16 == m.n_params16 &&
            !memcmp(back.params16, m.params16, m.n_params16 * sizeof(bf16)) &&
            !memcmp(back.params, m.params, m.n_params * sizeof(float)),
        "bf16 file -> bf16 model: bit for bit");
  CHECK(!modelfile_load(&wide, p16f), "load bf16 into fp32");
  CHECK(wide.n_params16 == 0 && !memcmp(wide.params, ref.params, ref.n_params * sizeof(float)),
        "bf16 file -> fp32 model: the exact values");
  model_init_random(&ref, 6, 0.3f, 0.3f); /* values that are not bf16 */
  CHECK(!modelfile_save(&ref, p32f, NULL), "save fp32");
  CHECK(!modelfile_load_tp(&rounded, p32f, NULL, &prep), "load fp32 into bf16");
  int same = 1;
  for (int i = 0; i < rounded.n_tensors; i++) {
    const param_tensor *t = &rounded.tensors[i];
    const float *x = ref.params + ref.tensors[i].offset;
    for (size_t j = 0; j < t->numel; j++)
      same &= t->bf16 ? rounded.params16[t->offset + j] == bf16_from_f32(x[j])
                      : rounded.params[t->offset + j] == x[j];
  }
  CHECK(same, "fp32 file -> bf16 model: each value rounded to nearest even");
  unlink(p16f), unlink(p32f), rmdir(dir);

  /* refusals */
  const int q0 = model_linear_tensor(0, LORA_Q);
  CHECK(model_set_trainable(&m, q0, 1) != 0, "a bf16 tensor cannot train");
  model plan;
  CHECK(!model_plan_tp(&plan, &cfg, NULL), "plan");
  CHECK(model_set_bf16(&plan, 1) != 0, "a norm (1-D) is never bf16");
  CHECK(model_set_bf16(&plan, q0) != 0, "a trainable tensor is never bf16");
  CHECK(!model_alloc_params(&plan, NULL), "alloc");
  CHECK(!model_set_trainable(&plan, q0, 0) && model_set_bf16(&plan, q0) != 0,
        "nothing becomes bf16 after the allocation");

  model_free(&plan), model_free(&back), model_free(&wide), model_free(&rounded);
  pass_free(&p32), pass_free(&p16), pass_free(&pfb);
  lora_free(&lo);
  model_free(&m), model_free(&ref);
  printf("%d passed, %d failed\n", n_pass, n_fail);
  return n_fail != 0;
}
