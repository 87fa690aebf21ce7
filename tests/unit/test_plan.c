/* gorp plan's arithmetic (plan.h):
 * - on a small shape, every part counted by hand from the tensor shapes written out here (seqft,
 *   and gorp with LoRA q,v, a rank-k gate and paper-axis bases), at tp = 1 and tp = 2;
 * - at tp = 1 the plan equals what gorp really allocates: model_create's parameters, the
 *   trainer's gradients, LoRA pairs, optimizer states, bases and SVD/basis workspace, and
 *   model_reserve's / lora_reserve's activation buffers, for five method configurations;
 * - tp splits: for every part but the workspace, the split share times tp is the tp = 1 share and
 *   the replicated share does not change (tp 2 and 4); dp splits the batch (ceil);
 * - refusals: tp not dividing the heads, the KV heads or the MLP width, tp 0, a sequence past
 *   max_seq, a method's bad keys, each naming the key. */
#include "gorp/config.h"
#include "gorp/lora.h"
#include "gorp/plan.h"
#include "gorp/trainer.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* V=10, C=8, F=12, L=2, H=4, KV=2, D=2: QD = 8, KD = 4. */
static const model_config small = {.vocab_size = 10,
                                   .hidden_size = 8,
                                   .intermediate_size = 12,
                                   .num_layers = 2,
                                   .num_heads = 4,
                                   .num_kv_heads = 2,
                                   .head_dim = 2,
                                   .max_seq = 16,
                                   .rms_eps = 1e-5f,
                                   .rope_theta = 10000.0f};

static uint64_t item(const plan *p, int part, const char *prefix) {
  uint64_t n = 0;
  for (int i = 0; i < p->n_items; i++)
    if (p->items[i].part == part && !strncmp(p->items[i].what, prefix, strlen(prefix)))
      n += p->items[i].floats;
  return n;
}

static plan *compute(const model_config *cfg, const plan_method *m, int tp, int dp, int B, int T) {
  static plan p;
  const plan_layout lay = {.tp = tp, .dp = dp, .batch = B, .seq = T, .eval_batch = 1};
  const int rc = plan_compute(&p, cfg, m, &lay);
  CHECK(rc == 0, "plan_compute failed (tp %d, dp %d)", tp, dp);
  return &p;
}

static void test_seqft_by_hand(void) {
  const plan_method m = {.name = "seqft", .all_weights = 1, .n_tasks = 2};
  const plan *p = compute(&small, &m, 1, 1, 2, 5);
  /* per layer: ln1 8 + q 8x8 + k 4x8 + v 4x8 + o 8x8 + ln2 8 + gate 12x8 + up 12x8 + down 8x12
   * = 8 + 64 + 32 + 32 + 64 + 8 + 96 + 96 + 96 = 496; embed 10x8 + head 10x8 + norm 8 = 168 */
  const uint64_t params = 2 * 496 + 168;
  CHECK(p->n_params == params, "parameters %llu, want %llu", (unsigned long long)p->n_params,
        (unsigned long long)params);
  CHECK(p->floats[PLAN_WEIGHTS] == params, "weights %llu", (unsigned long long)p->floats[0]);
  CHECK(p->floats[PLAN_GRADS] == params, "seqft trains every tensor");
  CHECK(p->floats[PLAN_OPTIM] == 2 * params, "AdamW m + v");
  CHECK(p->floats[PLAN_LORA] == 0 && p->floats[PLAN_BASES] == 0, "no adapters, no bases");
  /* B=2, T=5, N=10: residual/norms (4L+3) N C = 880, 1/rms (2L+1) N = 50, q,k,v,atty
   * L N (2*8 + 2*4) = 480, probabilities L B H T T = 400, MLP 3 L N F = 720, logits N V = 100,
   * the head's rows 3 N = 30, RoPE 2 T (D/2) = 10 */
  CHECK(p->floats[PLAN_ACTS] == 880 + 50 + 480 + 400 + 720 + 100 + 30 + 10, "activations %llu",
        (unsigned long long)p->floats[PLAN_ACTS]);
  /* dx N C 80, dbuf x 2: 2 N max(C, F, QD) 240, dq N QD 80, dk + dv 2 N KD 80, dg + du 2 N F 240,
   * datt T T 25 */
  CHECK(item(p, PLAN_WORK, "backward scratch") == 80 + 240 + 80 + 80 + 240 + 25,
        "backward scratch %llu", (unsigned long long)item(p, PLAN_WORK, "backward scratch"));
  /* linears 2 x 480 MACs per token + head 80; attention 4 L B H T T D = 3200 */
  CHECK(p->flops_forward == 2.0 * 10 * (2 * 480 + 80) + 3200, "forward FLOPs %g", p->flops_forward);
  CHECK(p->flops_attention == 3200, "attention FLOPs %g", p->flops_attention);
  CHECK(p->flops_step == 3 * p->flops_forward, "step = 3 x forward");
  { /* answer rows only (model_step.head): the head's term counts B x answer rows, not N */
    const plan_layout two = {.tp = 1, .dp = 1, .batch = 2, .seq = 5, .eval_batch = 1, .answer = 2};
    plan *q = malloc(sizeof(*q));
    CHECK(q && !plan_compute(q, &small, &m, &two), "plan with 2 answer rows");
    CHECK(q && q->flops_forward == 2.0 * 10 * 2 * 480 + 2.0 * 2 * 2 * 80 + 3200,
          "head over B x 2 answer rows: forward %g", q ? q->flops_forward : 0.0);
    free(q);
  }
  /* evaluation KV cache per prompt decoded together (model_generate's kv_reserve): k, v
   * 2 L T KD = 80; one step's rows 4 C + 1 + 2 QD + 2 KD + 3 F + V + 2 (D/2) = 105; one thread's
   * attention scores H/KV x T = 10 */
  CHECK(item(p, PLAN_WORK, "evaluation KV cache") == 80 + 105 + 10, "KV cache of 1 prompt %llu",
        (unsigned long long)item(p, PLAN_WORK, "evaluation KV cache"));
  plan p3;
  const plan_layout three = {.tp = 1, .dp = 1, .batch = 2, .seq = 5, .eval_batch = 3};
  CHECK(!plan_compute(&p3, &small, &m, &three) &&
            item(&p3, PLAN_WORK, "evaluation KV cache") == 3 * (80 + 105) + 10,
        "KV cache of 3 prompts %llu", (unsigned long long)item(&p3, PLAN_WORK, "evaluation KV"));
  /* model.trained_products = bf16: one bf16 scratch for the largest B operand rounded, a layer
   * input N max(C, F, QD) = 120 > embedding 80 > gate 96, in bf16 half as many floats */
  const plan_layout tb = {
      .tp = 1, .dp = 1, .batch = 2, .seq = 5, .eval_batch = 1, .trained_bf16 = 1};
  CHECK(item(p, PLAN_WORK, "bf16 scratch") == 0 && !plan_compute(&p3, &small, &m, &tb) &&
            item(&p3, PLAN_WORK, "bf16 scratch") == 60,
        "trained products' bf16 scratch %llu", (unsigned long long)item(&p3, PLAN_WORK, "bf16"));
  /* tp 2: embedding, head and the 5 norms (80 + 80 + 40) replicated, the linears (2 x 480) halved
   */
  p = compute(&small, &m, 2, 1, 2, 5);
  CHECK(p->floats[PLAN_WEIGHTS] == 200 + 480, "tp 2 weights %llu",
        (unsigned long long)p->floats[PLAN_WEIGHTS]);
  CHECK(p->flops_attention == 1600, "tp 2 splits the heads");
}

static plan_method gorp_paper(void) {
  return (plan_method){.name = "gorp",
                       .lora_targets = 1u << LORA_Q | 1u << LORA_V,
                       .lora_r = 2,
                       .lora_pairs = 3,
                       .full_targets = 1u << LORA_GATE,
                       .full_lowrank = 1,
                       .full_rank = 2,
                       .bases_lora = 1,
                       .bases_full = 1,
                       .n_tasks = 3};
}

static void test_gorp_by_hand(void) {
  const plan_method m = gorp_paper();
  const plan *p = compute(&small, &m, 1, 1, 2, 5);
  /* one pair per layer: q r (C + QD) = 2 (8 + 8) = 32, v r (C + KD) = 2 (8 + 4) = 24 */
  const uint64_t pair = 2 * (32 + 24);
  CHECK(p->floats[PLAN_LORA] == 3 * pair, "3 stacked pairs: %llu",
        (unsigned long long)p->floats[PLAN_LORA]);
  CHECK(p->floats[PLAN_GRADS] == pair + 2 * 96, "active pair + the gate's 12 x 8 gradient: %llu",
        (unsigned long long)p->floats[PLAN_GRADS]);
  /* gate 12 x 8, m >= n: Q (2 x 8) = 16 and m, v, R, N of (12 x 2) = 96 per layer */
  CHECK(p->floats[PLAN_OPTIM] == 2 * pair + 2 * (16 + 96), "optimizer %llu",
        (unsigned long long)p->floats[PLAN_OPTIM]);
  /* paper axes: LoRA A on its rank axis (2 x 2), the gate on its 12 rows, at most 3 tasks x k = 2
   * columns (12 x 6) */
  CHECK(p->floats[PLAN_BASES] == 2 * 2 * 4 + 2 * 72, "bases %llu",
        (unsigned long long)p->floats[PLAN_BASES]);
  /* LoRA h: L x 7 x N x r = 280 */
  CHECK(p->floats[PLAN_ACTS] == 2670 + 280, "activations %llu",
        (unsigned long long)p->floats[PLAN_ACTS]);
  /* three pairs of q (in 8, out 8) and v (in 8, out 4): 3 x 2 x (16 + 12) MACs per token */
  CHECK(p->flops_forward == 2.0 * 10 * (2 * 480 + 80 + 2 * 3 * 2 * 28) + 3200, "forward %g",
        p->flops_forward);
  /* tp 2: A of q, v replicated (2 x 8 each), B split (8/2 x 2 and 4/2 x 2) */
  p = compute(&small, &m, 2, 1, 2, 5);
  CHECK(p->floats[PLAN_LORA] == 3 * 2 * (16 + 8 + 16 + 4), "tp 2 LoRA %llu",
        (unsigned long long)p->floats[PLAN_LORA]);
  /* the gate's rows are split: Q (2 x 8) replicated, R-shaped (6 x 2) x 4, basis 6 x 6 */
  CHECK(item(p, PLAN_OPTIM, "gate_proj") == 2 * (16 + 48), "tp 2 rank-k state %llu",
        (unsigned long long)item(p, PLAN_OPTIM, "gate_proj"));
  CHECK(item(p, PLAN_BASES, "gate_proj") == 2 * 36, "tp 2 gate basis %llu",
        (unsigned long long)item(p, PLAN_BASES, "gate_proj"));
}

/* ------------------------------------------------------------------------------------------ */
/* against the real allocations (tp = 1) */

static const model_config real = {.vocab_size = 29,
                                  .hidden_size = 16,
                                  .intermediate_size = 40,
                                  .num_layers = 2,
                                  .num_heads = 4,
                                  .num_kv_heads = 2,
                                  .head_dim = 4,
                                  .max_seq = 32,
                                  .rms_eps = 1e-5f,
                                  .rope_theta = 10000.0f};

static uint64_t space_floats(const gorp_space *s) {
  if (!s->S) return 0;
  return (uint64_t)s->len * s->cap + (s->cov ? (uint64_t)s->len * s->len : 0);
}

static void check_against_trainer(const char *name, const char *keys) {
  char text[1024];
  snprintf(text, sizeof(text),
           "[data]\nroot = /r\ninstructions = /i\ntasks = a, b, c\n[full]\nrank = 3\n%s", keys);
  gorp_config c;
  if (config_from_text(&c, text, NULL, 0)) {
    CHECK(0, "%s: config", name);
    return;
  }
  plan_method pm;
  CHECK(plan_method_from_config(&pm, &c) == 0, "%s: method", name);
  enum { B = 3, T = 11 };
  plan *p = compute(&real, &pm, 1, 1, B, T);
  model m;
  model_create(&m, &real);
  trainer tr;
  if (trainer_create(&tr, &m, &c, c.run.method, 3, NULL)) {
    CHECK(0, "%s: trainer", name);
    model_free(&m);
    config_free(&c);
    return;
  }
  const task_train tt = {.epochs = 1, .batch_size = B, .lr = 1e-3f};
  trainer_begin_task(&tr, 0, &tt);
  const uint64_t pair = tr.has_lora ? tr.lo.pair_size : 0;
  uint64_t optim = 2 * tr.opt_all.n + 2 * tr.opt_lora.n, bases = 0;
  for (int i = 0; i < tr.n_full; i++) {
    optim += tr.full[i].low.proj ? tr.full[i].low.state_floats : 2 * tr.full[i].plain.n;
    bases += space_floats(&tr.full[i].space);
  }
  for (int i = 0; tr.lora_space && i < tr.lo.L * LORA_N_TARGETS; i++)
    bases += space_floats(&tr.lora_space[i]);
  const struct {
    const char *what;
    uint64_t got, want;
  } parts[] = {{"weights", m.n_params, p->floats[PLAN_WEIGHTS]},
               {"gradients", m.n_grads + m.n_grad_slot + pair, p->floats[PLAN_GRADS]},
               {"LoRA pairs", pair * (tr.has_lora ? tr.lo.max_pairs : 0), p->floats[PLAN_LORA]},
               {"optimizer", optim, p->floats[PLAN_OPTIM]},
               {"bases", bases, p->floats[PLAN_BASES]},
               {"basis scratch", tr.ws.scratch_cap, item(p, PLAN_WORK, "basis scratch")}};
  for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
    CHECK(parts[i].got == parts[i].want, "%s: %s allocated %llu floats, planned %llu", name,
          parts[i].what, (unsigned long long)parts[i].got, (unsigned long long)parts[i].want);
  /* the SVD work array comes from LAPACK's own query: the plan's formula is within 2% */
  const double work = (double)item(p, PLAN_WORK, "SVD workspace");
  CHECK(work >= 0.98 * tr.ws.work_cap && work <= 1.02 * tr.ws.work_cap,
        "%s: SVD workspace reserved %zu floats, planned %.0f", name, tr.ws.work_cap, work);
  /* model_reserve's float allocation and its ints (the head's row indices and targets, 2 N) = the
   * kept activations + the backward scratch */
  model_reserve(&m, B, T);
  const uint64_t acts = (uint64_t)(m.acts.datt + T * T - m.acts.x) + 2 * (uint64_t)B * T;
  uint64_t lora_acts = 0;
  if (tr.has_lora) {
    lora_reserve(&tr.lo, B * T);
    /* the end of the one allocation: dh (N, r) comes last */
    lora_acts = (uint64_t)(tr.lo.dh + (size_t)B * T * tr.lo.r - tr.lo.h);
  }
  const uint64_t kept = p->floats[PLAN_ACTS] - item(p, PLAN_ACTS, "LoRA h");
  CHECK(acts == kept + item(p, PLAN_WORK, "backward scratch"),
        "%s: model_reserve %llu floats, planned %llu + %llu", name, (unsigned long long)acts,
        (unsigned long long)kept, (unsigned long long)item(p, PLAN_WORK, "backward scratch"));
  CHECK(lora_acts == item(p, PLAN_ACTS, "LoRA h") + item(p, PLAN_WORK, "LoRA scratch"),
        "%s: lora_reserve %llu floats, planned %llu", name, (unsigned long long)lora_acts,
        (unsigned long long)(item(p, PLAN_ACTS, "LoRA h") + item(p, PLAN_WORK, "LoRA scratch")));
  /* train.recompute: model_reserve then keeps one layer's activations, as planned */
  plan *rp = malloc(sizeof(*rp));
  const plan_layout lr = {.tp = 1, .dp = 1, .batch = B, .seq = T, .eval_batch = 1, .recompute = 1};
  CHECK(rp && !plan_compute(rp, &real, &pm, &lr), "%s: recompute plan", name);
  m.recompute = 1;
  model_reserve(&m, B, T);
  const uint64_t racts = (uint64_t)(m.acts.datt + T * T - m.acts.x) + 2 * (uint64_t)B * T;
  const uint64_t rkept = rp ? rp->floats[PLAN_ACTS] - item(rp, PLAN_ACTS, "LoRA h") : 0;
  CHECK(rp && racts == rkept + item(rp, PLAN_WORK, "backward scratch") && racts < acts,
        "%s: recompute: model_reserve %llu floats, planned %llu + %llu", name,
        (unsigned long long)racts, (unsigned long long)rkept,
        (unsigned long long)(rp ? item(rp, PLAN_WORK, "backward scratch") : 0));
  free(rp);
  trainer_free(&tr);
  model_free(&m);
  config_free(&c);
}

/* ------------------------------------------------------------------------------------------ */

/* Every part but the workspace: split share x tp = the tp = 1 share, replicated share unchanged. */
static void check_tp_split(const char *name, const model_config *cfg, const plan_method *m,
                           int tp) {
  plan one;
  const plan_layout l1 = {.tp = 1, .dp = 1, .batch = 3, .seq = 7, .eval_batch = 1};
  CHECK(plan_compute(&one, cfg, m, &l1) == 0, "%s: tp 1", name);
  const plan *p = compute(cfg, m, tp, 1, 3, 7);
  for (int part = 0; part < PLAN_WORK; part++) {
    CHECK(p->sharded[part] * tp == one.sharded[part], "%s tp %d: split %s %llu x %d != %llu", name,
          tp, plan_part_names[part], (unsigned long long)p->sharded[part], tp,
          (unsigned long long)one.sharded[part]);
    CHECK(p->floats[part] - p->sharded[part] == one.floats[part] - one.sharded[part],
          "%s tp %d: replicated %s changed", name, tp, plan_part_names[part]);
  }
  CHECK(p->n_params == one.n_params, "%s: the model does not change with tp", name);
}

static void test_tp_splits(void) {
  model_config kv4 = small;
  kv4.num_kv_heads = 4; /* divisible by 4 */
  const plan_method seqft = {.name = "seqft", .all_weights = 1, .n_tasks = 2};
  plan_method gp = gorp_paper(), all = gorp_paper(), seqlora = gorp_paper();
  all.lora_targets = all.full_targets = (1u << LORA_N_TARGETS) - 1;
  all.input_axis = 1;
  all.activation_bases = 1;
  all.full_lowrank = 0;
  seqlora = (plan_method){.name = "seqlora",
                          .lora_targets = (1u << LORA_N_TARGETS) - 1,
                          .lora_r = 3,
                          .lora_pairs = 1,
                          .n_tasks = 4};
  plan_method lowrank_all = gorp_paper();
  lowrank_all.full_targets = (1u << LORA_N_TARGETS) - 1; /* m < n (down) takes P and R (k, n) */
  const struct {
    const char *name;
    const plan_method *m;
  } cases[] = {{"seqft", &seqft},
               {"gorp paper", &gp},
               {"gorp input, all targets, activation", &all},
               {"seqlora all targets", &seqlora},
               {"gorp rank-k on every linear", &lowrank_all}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    check_tp_split(cases[i].name, &small, cases[i].m, 2);
    check_tp_split(cases[i].name, &kv4, cases[i].m, 2);
    check_tp_split(cases[i].name, &kv4, cases[i].m, 4);
  }
  /* dp: the busiest rank gets ceil(5 / 2) = 3 sequences; weights do not change */
  const plan_method m = gorp_paper();
  plan dp1;
  const plan_layout l3 = {.tp = 1, .dp = 1, .batch = 3, .seq = 7, .eval_batch = 1};
  plan_compute(&dp1, &small, &m, &l3);
  const plan *p = compute(&small, &m, 1, 2, 5, 7);
  CHECK(p->batch_local == 3, "ceil(5 / 2) = 3, got %d", p->batch_local);
  CHECK(p->floats[PLAN_ACTS] == dp1.floats[PLAN_ACTS] && p->total == dp1.total,
        "dp 2 of batch 5 = one rank with batch 3");
}

static void expect_refusal(const char *what, const model_config *cfg, const plan_method *m, int tp,
                           int dp, int seq, const char *needle) {
  plan p;
  const plan_layout lay = {.tp = tp, .dp = dp, .batch = 4, .seq = seq, .eval_batch = 1};
  capture_begin();
  const int rc = plan_compute(&p, cfg, m, &lay);
  char *err = capture_end();
  CHECK(rc != 0 && strstr(err, needle), "%s: rc %d, message lacks '%s': %s", what, rc, needle, err);
  free(err);
}

static void test_refusals(void) {
  const plan_method seqft = {.name = "seqft", .all_weights = 1, .n_tasks = 1};
  model_config f10 = small;
  f10.num_kv_heads = 4;
  f10.intermediate_size = 10;
  expect_refusal("tp 3 vs 4 heads", &small, &seqft, 3, 1, 5,
                 "parallel.tp = 3 does not divide model.num_heads = 4");
  expect_refusal("tp 4 vs 2 KV heads", &small, &seqft, 4, 1, 5,
                 "parallel.tp = 4 does not divide model.num_kv_heads = 2");
  expect_refusal("tp 4 vs MLP 10", &f10, &seqft, 4, 1, 5,
                 "parallel.tp = 4 does not divide model.intermediate_size = 10");
  expect_refusal("tp 0", &small, &seqft, 0, 1, 5, "parallel.tp = 0");
  expect_refusal("dp 0", &small, &seqft, 1, 0, 5, "parallel.dp = 0");
  plan p0;
  const plan_layout no_eval = {.tp = 1, .dp = 1, .batch = 4, .seq = 5, .eval_batch = 0};
  capture_begin();
  const int rc0 = plan_compute(&p0, &small, &seqft, &no_eval);
  char *err0 = capture_end();
  CHECK(rc0 != 0 && strstr(err0, "eval.batch_size = 0"), "eval batch 0: %s", err0);
  free(err0);
  expect_refusal("sequence past max_seq", &small, &seqft, 1, 1, 17, "max_position_embeddings");
  plan_method big_k = gorp_paper();
  big_k.full_rank = 9;
  expect_refusal("rank above the gate's 8 columns", &small, &big_k, 1, 1, 5, "full.rank = 9");

  /* the method's keys, as the trainer refuses them */
  const char *base = "[data]\nroot = /r\ninstructions = /i\ntasks = a, b\n";
  const struct {
    const char *set, *needle;
  } bad[] = {{"run.method=inclora", NULL},
             {"lora.targets=none", "lora.targets = none: run.method = inclora"},
             {"gorp.basis_source=activation", "gorp.basis_source = activation needs"}};
  char *over[2] = {"run.method=inclora", NULL};
  for (size_t i = 1; i < sizeof(bad) / sizeof(bad[0]); i++) {
    gorp_config c;
    over[0] = i == 1 ? "run.method=inclora" : "run.method=gorp";
    over[1] = (char *)bad[i].set;
    if (config_from_text(&c, base, over, 2)) {
      CHECK(0, "config for %s", bad[i].set);
      continue;
    }
    plan_method m;
    capture_begin();
    const int rc = plan_method_from_config(&m, &c);
    char *err = capture_end();
    CHECK(rc != 0 && strstr(err, bad[i].needle), "%s: message lacks '%s': %s", bad[i].set,
          bad[i].needle, err);
    free(err);
    config_free(&c);
  }
  /* pairs per method: seqlora keeps one, inclora one per task */
  const char *methods[] = {"seqlora", "inclora"};
  for (int i = 0; i < 2; i++) {
    gorp_config c;
    char set[64];
    snprintf(set, sizeof(set), "run.method=%s", methods[i]);
    char *o[1] = {set};
    if (config_from_text(&c, base, o, 1)) continue;
    plan_method m;
    CHECK(plan_method_from_config(&m, &c) == 0 && m.lora_pairs == (i ? 2 : 1) && !m.full_targets,
          "%s: %d pairs", methods[i], m.lora_pairs);
    config_free(&c);
  }
}

int main(void) {
  test_seqft_by_hand();
  test_gorp_by_hand();
  check_against_trainer("seqft", "[run]\nmethod = seqft\n");
  check_against_trainer("inclora q,v", "[run]\nmethod = inclora\n");
  check_against_trainer("gorp paper", "[run]\nmethod = gorp\n[lora]\ntargets = q, v, down\n"
                                      "[full]\ntargets = gate, down\n");
  check_against_trainer("gorp input activation adam",
                        "[run]\nmethod = gorp\n[lora]\ntargets = all\n[full]\ntargets = all\n"
                        "optimizer = adam\n[gorp]\naxis = input\nbasis_source = activation\n");
  check_against_trainer("galore lowrank all", "[run]\nmethod = galore\n[full]\ntargets = all\n");
  test_tp_splits();
  test_refusals();
  return tests_finish();
}
