/* gorp plan's arithmetic (see plan.h; every formula is in docs/PLAN.md). The sizes mirror what
 * model.c, lora.c, optim_*.c and trainer.c allocate at tp = 1; for tp > 1 they follow the Megatron
 * layout that gorp run builds (docs/PARALLEL.md). */
#include "gorp/plan.h"

#include "gorp/config.h"
#include "gorp/err.h"
#include "gorp/lora.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef uint64_t u64;

const char *const plan_part_names[PLAN_N_PARTS] = {
    "weights", "gradients", "lora", "optimizer", "bases", "activations", "workspace"};

static const char *const short_names[LORA_N_TARGETS] = {
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};

static u64 umin(u64 a, u64 b) {
  return a < b ? a : b;
}
static u64 umax(u64 a, u64 b) {
  return a > b ? a : b;
}

/* One linear kind: global shape (out m, in n) and its shard on one rank. Column-parallel
 * (q, k, v, gate, up) splits the rows, row-parallel (o, down) the columns. */
typedef struct lin {
  u64 m, n;   /* global */
  u64 ml, nl; /* one rank's shard */
  int rows;   /* 1: rows split (column-parallel); 0: columns split (row-parallel) */
} lin;

static void linears(lin *out, const model_config *c, int tp) {
  const u64 C = c->hidden_size, F = c->intermediate_size, QD = (u64)c->num_heads * c->head_dim,
            KD = (u64)c->num_kv_heads * c->head_dim;
  const u64 m[LORA_N_TARGETS] = {QD, KD, KD, C, F, F, C};
  const u64 n[LORA_N_TARGETS] = {C, C, C, QD, C, C, F};
  const int rows[LORA_N_TARGETS] = {1, 1, 1, 0, 1, 1, 0};
  for (int t = 0; t < LORA_N_TARGETS; t++)
    out[t] = (lin){.m = m[t],
                   .n = n[t],
                   .ml = rows[t] ? m[t] / tp : m[t],
                   .nl = rows[t] ? n[t] : n[t] / tp,
                   .rows = rows[t]};
}

static void add(plan *p, int part, int sharded, u64 floats, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void add(plan *p, int part, int sharded, u64 floats, const char *fmt, ...) {
  if (!floats) return;
  p->floats[part] += floats;
  if (sharded) p->sharded[part] += floats;
  if (p->n_items == PLAN_MAX_ITEMS) return; /* cannot happen: at most 70 items */
  plan_item *it = &p->items[p->n_items++];
  it->part = part;
  it->floats = floats;
  it->sharded = sharded;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(it->what, sizeof(it->what), fmt, ap);
  va_end(ap);
}

int plan_check_layout(const model_config *cfg, int tp, int dp) {
  if (tp < 1) GORP_ERR(GORP_EINPUT, "parallel.tp = %d: must be >= 1", tp);
  if (dp < 1) GORP_ERR(GORP_EINPUT, "parallel.dp = %d: must be >= 1", dp);
  const struct {
    const char *key, *why;
    int value;
  } split[] = {{"model.num_heads", "the attention heads", cfg->num_heads},
               {"model.num_kv_heads", "the key/value heads", cfg->num_kv_heads},
               {"model.intermediate_size", "the MLP rows of gate/up and columns of down",
                cfg->intermediate_size}};
  for (size_t i = 0; i < sizeof(split) / sizeof(split[0]); i++)
    if (split[i].value % tp)
      GORP_ERR(GORP_EINPUT,
               "parallel.tp = %d does not divide %s = %d: tensor parallelism splits %s evenly over "
               "the tp ranks",
               tp, split[i].key, split[i].value, split[i].why);
  return GORP_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* the parts */

/* A weight of n values, frozen or not: in fp32 n floats; a frozen matrix under model.dtype = bf16
 * n bf16 values, half as many floats (rounded up). */
static void add_weight(plan *p, int sharded, int frozen, u64 n, const char *what) {
  const int half = frozen && p->layout.bf16;
  add(p, PLAN_WEIGHTS, sharded, half ? (n + 1) / 2 : n, "%s%s", what, half ? " bf16" : "");
}

static void weights(plan *p, const lin *ln) {
  const model_config *c = &p->cfg;
  const u64 V = c->vocab_size, C = c->hidden_size, L = c->num_layers;
  const int frozen = !p->method.all_weights; /* what trains: trainer_prepare_model's rule */
  char what[80];
  snprintf(what, sizeof(what), "model.embed_tokens (%llu x %llu)", (unsigned long long)V,
           (unsigned long long)C);
  add_weight(p, 0, frozen, V * C, what);
  snprintf(what, sizeof(what), "lm_head (%llu x %llu)", (unsigned long long)V,
           (unsigned long long)C);
  if (!c->tie_embeddings) add_weight(p, 0, frozen, V * C, what);
  add(p, PLAN_WEIGHTS, 0, (2 * L + 1) * C, "RMSNorm weights (%llu x %llu)",
      (unsigned long long)(2 * L + 1), (unsigned long long)C);
  for (int t = 0; t < LORA_N_TARGETS; t++) {
    snprintf(what, sizeof(what), "%s, %llu layers x (%llu x %llu)", short_names[t],
             (unsigned long long)L, (unsigned long long)ln[t].ml, (unsigned long long)ln[t].nl);
    add_weight(p, 1, frozen && !(p->method.full_targets >> t & 1), L * ln[t].ml * ln[t].nl, what);
  }
}

/* Floats of one LoRA pair on one rank: A (r, in) and B (out, r) per target and layer; for a
 * column-parallel base A is replicated and B split, for a row-parallel base A is split and B
 * replicated. */
static void pair_floats(const plan *p, const lin *ln, u64 *repl, u64 *shard) {
  const u64 r = p->method.lora_r, L = p->cfg.num_layers;
  *repl = *shard = 0;
  for (int t = 0; t < LORA_N_TARGETS; t++) {
    if (!(p->method.lora_targets >> t & 1)) continue;
    *repl += L * r * (ln[t].rows ? ln[t].n : ln[t].m);
    *shard += L * r * (ln[t].rows ? ln[t].ml : ln[t].nl);
  }
}

static void gradients_lora_optim(plan *p, const lin *ln) {
  const plan_method *m = &p->method;
  const u64 L = p->cfg.num_layers;
  if (m->all_weights) {
    const u64 repl = p->floats[PLAN_WEIGHTS] - p->sharded[PLAN_WEIGHTS];
    const u64 shard = p->sharded[PLAN_WEIGHTS];
    add(p, PLAN_GRADS, 0, repl, "every tensor: embedding, head, norms");
    add(p, PLAN_GRADS, 1, shard, "every tensor: the linears");
    add(p, PLAN_OPTIM, 0, 2 * repl, "AdamW m + v: embedding, head, norms");
    add(p, PLAN_OPTIM, 1, 2 * shard, "AdamW m + v: the linears");
  }
  if (m->lora_targets) {
    u64 repl, shard;
    pair_floats(p, ln, &repl, &shard);
    add(p, PLAN_GRADS, 0, repl, "LoRA active pair: A of q,k,v,gate,up; B of o,down");
    add(p, PLAN_GRADS, 1, shard, "LoRA active pair: B of q,k,v,gate,up; A of o,down");
    add(p, PLAN_LORA, 0, m->lora_pairs * repl, "%d pair(s) r=%d: A of q,k,v,gate,up; B of o,down",
        m->lora_pairs, m->lora_r);
    add(p, PLAN_LORA, 1, m->lora_pairs * shard, "%d pair(s) r=%d: B of q,k,v,gate,up; A of o,down",
        m->lora_pairs, m->lora_r);
    add(p, PLAN_OPTIM, 0, 2 * repl, "AdamW m + v of the active LoRA pair (replicated part)");
    add(p, PLAN_OPTIM, 1, 2 * shard, "AdamW m + v of the active LoRA pair (split part)");
  }
  for (int t = 0; t < LORA_N_TARGETS; t++) {
    if (!(m->full_targets >> t & 1)) continue;
    const lin *w = &ln[t];
    if (m->full_lowrank && m->full_stream) /* one layer's slot (trainer.c, stream_hook) */
      add(p, PLAN_GRADS, 1, w->ml * w->nl, "%s full-rank, one layer's (%llu x %llu), streamed",
          short_names[t], (unsigned long long)w->ml, (unsigned long long)w->nl);
    else
      add(p, PLAN_GRADS, 1, L * w->ml * w->nl, "%s full-rank, %llu layers x (%llu x %llu)",
          short_names[t], (unsigned long long)L, (unsigned long long)w->ml,
          (unsigned long long)w->nl);
    if (!m->full_lowrank) {
      add(p, PLAN_OPTIM, 1, 2 * L * w->ml * w->nl, "%s AdamW m + v, %llu layers", short_names[t],
          (unsigned long long)L);
      continue;
    }
    /* right: Q (k, n) on the input axis and R (m, k); else P (m, k) and R (k, n). P and R are
     * split over tp when their axis is the weight's split axis; Q is kept whole (optim_lowrank.h),
     * and R is then split when the rows are. */
    const int right = m->input_axis || w->m >= w->n;
    const int q_split = right ? 0 : w->rows;
    const u64 k = m->full_rank;
    const u64 q_loc = right ? w->n : w->ml, r_loc = right ? w->ml : w->nl;
    add(p, PLAN_OPTIM, q_split, L * k * q_loc, "%s rank-%llu Adam: %s (%llu x %llu), %llu layers",
        short_names[t], (unsigned long long)k, right ? "Q" : "P",
        right ? (unsigned long long)k : (unsigned long long)q_loc,
        right ? (unsigned long long)q_loc : (unsigned long long)k, (unsigned long long)L);
    add(p, PLAN_OPTIM, right ? w->rows : !q_split, 4 * L * k * r_loc,
        "%s rank-%llu Adam: m, v, R, N (%llu x %llu each), %llu layers", short_names[t],
        (unsigned long long)k, right ? (unsigned long long)r_loc : (unsigned long long)k,
        right ? (unsigned long long)k : (unsigned long long)r_loc, (unsigned long long)L);
  }
}

/* The protected axis of a full-rank target: 1 = its rows (output axis), 0 = its columns (input
 * axis); as trainer.c's full_axis_len: the input axis, plain Adam's output axis, or the rank-k
 * Adam's uncompressed axis (rows when Q is on the right, m >= n). */
static int full_axis_rows(const plan_method *m, const lin *w) {
  if (m->input_axis) return 0;
  if (!m->full_lowrank) return 1;
  return w->m >= w->n;
}

/* The columns a full-rank target's basis is allocated with (trainer.c, setup_full): a rank-k
 * optimizer's moment adds at most k per task (moment bases), else up to the axis length. */
static u64 full_cap(const plan_method *m, u64 len) {
  const u64 most = (u64)m->n_tasks * (u64)m->full_rank;
  return m->full_lowrank && !m->activation_bases ? umin(len, most) : len;
}

static void bases(plan *p, const lin *ln) {
  const plan_method *m = &p->method;
  const u64 L = p->cfg.num_layers, with_cov = m->activation_bases ? 2 : 1;
  const char *cov = m->activation_bases ? " + covariance" : "";
  for (int t = 0; t < LORA_N_TARGETS && m->bases_lora; t++) {
    if (!(m->lora_targets >> t & 1)) continue;
    /* input axis: A's columns (split for a row-parallel base, but activation bases are kept
     * whole: every rank builds them from the gathered inputs); paper: its rank axis */
    const int split = m->input_axis && !ln[t].rows && !m->activation_bases;
    const u64 len = m->input_axis ? ln[t].n : (u64)m->lora_r;
    const u64 loc = split ? ln[t].nl : len;
    add(p, PLAN_BASES, split, with_cov * L * loc * len,
        "LoRA A of %s: S (%llu x %llu)%s, %llu layers", short_names[t], (unsigned long long)loc,
        (unsigned long long)len, cov, (unsigned long long)L);
  }
  for (int t = 0; t < LORA_N_TARGETS && m->bases_full; t++) {
    if (!(m->full_targets >> t & 1)) continue;
    const lin *w = &ln[t];
    const int rows = full_axis_rows(m, w);
    const int split = (rows ? w->rows : !w->rows) && !m->activation_bases; /* as LoRA's above */
    const u64 len = rows ? w->m : w->n, loc = split ? (rows ? w->ml : w->nl) : len;
    const u64 cap = full_cap(m, len);
    add(p, PLAN_BASES, split, L * loc * cap + (with_cov - 1) * L * loc * len,
        "%s full-rank: S (%llu x %llu)%s, %llu layers", short_names[t], (unsigned long long)loc,
        (unsigned long long)cap, cov, (unsigned long long)L);
  }
}

/* Local sizes of one rank: batch rows B, tokens T, N = B T, and the split widths. */
typedef struct dims {
  u64 B, T, N, L, C, V, D, H, QD, KD, F, r;
} dims;

static dims local_dims(const plan *p) {
  const model_config *c = &p->cfg;
  const u64 tp = p->layout.tp, B = p->batch_local, T = p->layout.seq;
  return (dims){.B = B,
                .T = T,
                .N = B * T,
                .L = c->num_layers,
                .C = c->hidden_size,
                .V = c->vocab_size,
                .D = c->head_dim,
                .H = c->num_heads / tp,
                .QD = c->num_heads / tp * c->head_dim,
                .KD = c->num_kv_heads / tp * c->head_dim,
                .F = c->intermediate_size / tp,
                .r = p->method.lora_targets ? p->method.lora_r : 0};
}

/* model_acts (model.h) minus the backward scratch, and lora.h's h. */
static void activations(plan *p) {
  const dims d = local_dims(p);
  const u64 K = p->layout.recompute ? 1 : d.L; /* layers whose activations are kept */
  /* the residual entering each layer and the final norm's input (L + 1), the final norm's
   * output and the head's rows of it, and per kept layer the residual after attention and both
   * norm outputs */
  add(p, PLAN_ACTS, 0, (d.L + 3 + 3 * K) * d.N * d.C + (2 * K + 1) * d.N,
      "residual stream, RMSNorm outputs and 1/rms: %llu x N x C",
      (unsigned long long)(d.L + 3 + 3 * K));
  add(p, PLAN_ACTS, 1, K * d.N * (2 * d.QD + 2 * d.KD),
      "q, k, v, attention output: %llu layers x N x %llu", (unsigned long long)K,
      (unsigned long long)(2 * d.QD + 2 * d.KD));
  add(p, PLAN_ACTS, 1, K * d.B * d.H * d.T * d.T,
      "attention probabilities: %llu layers x %llu x %llu heads x %llu x %llu",
      (unsigned long long)K, (unsigned long long)d.B, (unsigned long long)d.H,
      (unsigned long long)d.T, (unsigned long long)d.T);
  add(p, PLAN_ACTS, 1, 3 * K * d.N * d.F,
      "MLP gate, up, silu(gate) * up: 3 x %llu layers x N x %llu", (unsigned long long)K,
      (unsigned long long)d.F);
  add(p, PLAN_ACTS, 0, d.N * d.V, "logits: N x %llu", (unsigned long long)d.V);
  add(p, PLAN_ACTS, 0, 3 * d.N, "the head's rows: index, target, loss weight: 3 x N");
  add(p, PLAN_ACTS, 0, d.T * (d.D / 2) * 2, "RoPE tables: 2 x %llu x %llu", (unsigned long long)d.T,
      (unsigned long long)(d.D / 2));
  if (d.r)
    add(p, PLAN_ACTS, 0, d.L * LORA_N_TARGETS * d.N * d.r,
        "LoRA h = drop(x) A^T: %llu layers x 7 targets x N x %llu", (unsigned long long)d.L,
        (unsigned long long)d.r);
}

/* sgesvd's optimal work for a matrix with long side mx and short side mn, asking for the vectors
 * of one side in place: when mx >= 1.6 mn (LAPACK's crossover) the path that overwrites the long
 * side takes mn^2 plus the larger of mx mn (the long side's copy) and the bidiagonalisation of the
 * mn x mn block, about (2 NB + 3) mn; otherwise the direct bidiagonalisation takes
 * 3 mn + (mx + mn) NB. NB = 32, OpenBLAS's block size. */
static u64 gesvd_work(u64 mx, u64 mn) {
  if (mx >= mn * 16 / 10) return mn * mn + mn + umax(mx * mn, (2 * 32 + 3) * mn);
  return 3 * mn + (mx + mn) * 32;
}

/* linalg_ws_reserve(w, m, n, k): the larger of the exact path (a copy of G, the singular values,
 * sgesvd's work) and the randomized one (sketches Yt (l, m) and X (l, n), l = min(k + 8, mn), and
 * the work of QR and of the small SVD). Matches linalg.c's LAPACK queries to a few percent. */
static u64 svd_work(u64 m, u64 n, u64 k) {
  const u64 mn = umin(m, n), mx = umax(m, n), l = umin(k + 8, mn);
  const u64 exact = m * n + mn + gesvd_work(mx, mn);
  const u64 randomized = l * (m + n) + 2 * l + umax(32 * l, gesvd_work(umax(n, l), umin(n, l)));
  return umax(exact, randomized);
}

/* gorp_basis_reserve(w, n, k, cap): SVDs of (n, k) and (k, n) for min(n, k) vectors, and the
 * extension scratch of gorp_basis.c. */
static void basis_reserve(u64 *work, u64 *scratch, u64 n, u64 k, u64 cap) {
  const u64 kk = umin(n, k);
  *work = umax(*work, umax(svd_work(n, k, kk), svd_work(k, n, kk)));
  *scratch = umax(*scratch, cap * k + n * k + n * kk + kk + n + cap);
}

static void workspace(plan *p, const lin *ln) {
  const plan_method *m = &p->method;
  const dims d = local_dims(p);
  const u64 wide = model_widest(&p->cfg, p->layout.tp);
  add(p, PLAN_WORK, 0,
      d.N * d.C + 2 * d.N * wide + d.N * d.QD + 2 * d.N * d.KD + 2 * d.N * d.F + d.T * d.T,
      "backward scratch: dx, dbuf x 2, dq, dk, dv, dg, du, datt");
  if (d.r)
    add(p, PLAN_WORK, 0, 2 * d.N * wide + d.N * d.r, "LoRA scratch: drop(x), its gradient, dh");
  /* the reservations of trainer.c's setup_full and setup_lora_spaces, on this rank's shards */
  u64 work = 0, scratch = 0;
  for (int t = 0; t < LORA_N_TARGETS; t++) {
    if (!(m->full_targets >> t & 1)) continue;
    const lin *w = &ln[t];
    if (m->full_lowrank) work = umax(work, svd_work(w->ml, w->nl, (u64)m->full_rank));
    if (!m->bases_full) continue;
    const int rows = full_axis_rows(m, w);
    const u64 len = rows ? w->m : w->n, loc = rows ? w->ml : w->nl, other = rows ? w->nl : w->ml;
    if (m->full_lowrank && !m->input_axis) /* the compressed moment (len, k) */
      basis_reserve(&work, &scratch, loc, (u64)m->full_rank, full_cap(m, len));
    else
      basis_reserve(&work, &scratch, loc, umax(other, loc), full_cap(m, len));
  }
  for (int t = 0; t < LORA_N_TARGETS && m->bases_lora; t++) {
    if (!(m->lora_targets >> t & 1)) continue;
    const u64 in_loc = ln[t].rows ? ln[t].n : ln[t].nl;
    const u64 len = m->input_axis ? ln[t].n : d.r, loc = m->input_axis ? in_loc : d.r;
    const u64 other = m->input_axis ? d.r : in_loc;
    basis_reserve(&work, &scratch, loc, umax(other, loc), len);
  }
  if (p->layout.trained_bf16 && (m->all_weights || m->full_targets)) {
    /* bf16_gemm_ff rounds its B whole: a trained weight (forward, input gradient) or a layer
     * input (weight gradient), 2 bytes a value */
    u64 big = d.N * wide;
    if (m->all_weights) big = umax(big, (u64)p->cfg.vocab_size * p->cfg.hidden_size);
    for (int t = 0; t < LORA_N_TARGETS; t++)
      if (m->all_weights || m->full_targets >> t & 1) big = umax(big, ln[t].ml * ln[t].nl);
    add(p, PLAN_WORK, 0, (big + 1) / 2, "bf16 scratch of the trained matrices' products");
  }
  add(p, PLAN_WORK, 0, work, "SVD workspace: copy of the largest matrix + LAPACK work");
  add(p, PLAN_WORK, 0, scratch, "basis scratch: residuals, coefficients, singular vectors");
  if (m->bases_lora) {
    u64 repl, shard;
    pair_floats(p, ln, &repl, &shard);
    add(p, PLAN_WORK, 0, repl + shard, "LoRA pair before its update");
  }
  if (m->bases_full && m->full_targets && !m->full_lowrank)
    add(p, PLAN_WORK, 0, d.F * umax(d.C, d.QD), "full-rank weight before its update");
  if (m->activation_bases)
    add(p, PLAN_WORK, 0, d.N * umax(d.F, umax(d.C, d.QD)), "layer inputs observed for covariances");
  /* model_generate's cache holds, for each of the eval.batch_size prompts decoded together, a
   * prompt's positions and its new ids, at most the planned length; beside it one step's scratch
   * for each prompt and one thread's attention scores */
  const u64 Be = (u64)p->layout.eval_batch;
  add(p, PLAN_WORK, 0,
      Be * (2 * d.L * d.T * d.KD + 4 * d.C + 1 + 2 * d.QD + 2 * d.KD + 3 * d.F + d.V +
            2 * (d.D / 2)) +
          d.H / (d.KD / d.D) * d.T,
      "evaluation KV cache: %llu prompts x %llu positions", (unsigned long long)Be,
      (unsigned long long)d.T);
}

static void flops(plan *p, const lin *ln) {
  const dims d = local_dims(p);
  double lin_mac = 0.0, lora_mac = 0.0;
  for (int t = 0; t < LORA_N_TARGETS; t++) {
    lin_mac += (double)ln[t].ml * ln[t].nl;
    if (p->method.lora_targets >> t & 1) /* A (r, in) then B (out, r), every stacked pair */
      lora_mac += (double)p->method.lora_pairs * d.r *
                  ((ln[t].rows ? ln[t].n : ln[t].nl) + (ln[t].rows ? ln[t].ml : ln[t].m));
  }
  const double N = (double)d.N, L = (double)d.L;
  p->flops_attention = 4.0 * L * d.B * d.H * (double)d.T * d.T * d.D; /* Q K^T and P V */
  /* a training step's head computes the rows with a target only (model_step.head) */
  const u64 answer = p->layout.answer ? umin((u64)p->layout.answer, d.T) : d.T;
  const double head_rows = (double)d.B * answer;
  p->macs_token = L * (lin_mac + lora_mac);
  p->flops_forward = 2.0 * N * p->macs_token + 2.0 * head_rows * d.C * d.V + p->flops_attention;
  /* recompute runs every layer's forward again in backward (not the head) */
  p->flops_step = 3.0 * p->flops_forward +
                  (p->layout.recompute ? 2.0 * N * p->macs_token + p->flops_attention : 0.0);
}

double plan_prompt_flops(const plan *p, int prompt, int new_ids) {
  const dims d = local_dims(p);
  const double Tp = prompt, L = (double)d.L, att = 4.0 * L * d.H * d.D; /* per query x key */
  /* prefill: every position through the layers, the whole T x T scores, the head at the last
   * row; then one position per new id against the cache, the head each time */
  double f = 2.0 * Tp * p->macs_token + att * Tp * Tp + 2.0 * d.C * d.V;
  for (int i = 1; i < new_ids; i++) f += 2.0 * p->macs_token + att * (Tp + i) + 2.0 * d.C * d.V;
  return f;
}

int plan_compute(plan *p, const model_config *cfg, const plan_method *m, const plan_layout *lay) {
  memset(p, 0, sizeof(*p));
  GORP_CALL(model_config_check(cfg));
  GORP_CALL(plan_check_layout(cfg, lay->tp, lay->dp));
  if (lay->batch < 1) GORP_ERR(GORP_EINPUT, "train.batch_size = %d: must be >= 1", lay->batch);
  if (lay->eval_batch < 1)
    GORP_ERR(GORP_EINPUT, "eval.batch_size = %d: must be >= 1", lay->eval_batch);
  if (lay->seq < 1 || lay->seq > cfg->max_seq)
    GORP_ERR(GORP_EINPUT, "sequence length %d is outside [1, max_position_embeddings = %d]",
             lay->seq, cfg->max_seq);
  if (m->lora_targets && (m->lora_r < 1 || m->lora_pairs < 1))
    GORP_ERR(GORP_EINPUT, "lora.r = %d with %d pair(s): both must be >= 1", m->lora_r,
             m->lora_pairs);
  lin ln[LORA_N_TARGETS];
  linears(ln, cfg, lay->tp);
  for (int t = 0; t < LORA_N_TARGETS; t++)
    if ((m->full_targets >> t & 1) && m->full_lowrank &&
        (m->full_rank < 1 || (u64)m->full_rank > umin(ln[t].m, ln[t].n)))
      GORP_ERR(GORP_EINPUT, "full.rank = %d is larger than %s (%llu x %llu) allows (%llu)",
               m->full_rank, short_names[t], (unsigned long long)ln[t].m,
               (unsigned long long)ln[t].n, (unsigned long long)umin(ln[t].m, ln[t].n));
  p->cfg = *cfg;
  p->method = *m;
  p->layout = *lay;
  p->batch_local = (lay->batch + lay->dp - 1) / lay->dp;
  {
    /* every count below is a u64 product of these sizes: refuse a plan whose largest terms (the
     * activations, the weights and their optimizer state) would not fit in 63 bits, instead of
     * printing wrapped numbers. model_config_check bounded the model; the batch is the rest. */
    const dims d = local_dims(p);
    const double N = (double)d.N, L = (double)d.L,
                 est = L * N * (4.0 * d.C + 2.0 * d.QD + 2.0 * d.KD + 3.0 * d.F + 7.0 * d.r + 2.0) +
                       L * d.B * d.H * (double)d.T * d.T + N * (double)d.V +
                       8.0 * MODEL_MAX_PARAMS + 2.0 * lay->eval_batch * L * (double)d.T * d.KD;
    if (est > 0x1p62)
      GORP_ERR(GORP_EINPUT,
               "a batch of %d sequences of %d tokens (and %d evaluation prompts) on this model "
               "needs more than 2^62 floats; lower train.batch_size, eval.batch_size or the "
               "sequence length",
               lay->batch, lay->seq, lay->eval_batch);
  }
  const u64 V = cfg->vocab_size, C = cfg->hidden_size, L = cfg->num_layers;
  p->n_params = V * C * (cfg->tie_embeddings ? 1 : 2) + (2 * L + 1) * C;
  for (int t = 0; t < LORA_N_TARGETS; t++) p->n_params += L * ln[t].m * ln[t].n;
  weights(p, ln);
  gradients_lora_optim(p, ln);
  bases(p, ln);
  activations(p);
  workspace(p, ln);
  flops(p, ln);
  for (int i = 0; i < PLAN_N_PARTS; i++) p->total += p->floats[i];
  return GORP_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* the method of a config (the rules of trainer_create) */

int plan_method_from_config(plan_method *m, const gorp_config *c) {
  memset(m, 0, sizeof(*m));
  const char *name = c->run.method;
  snprintf(m->name, sizeof(m->name), "%s", name);
  m->n_tasks = c->data.n_tasks;
  if (!strcmp(name, "seqft") || !strcmp(name, "mtl")) {
    m->all_weights = 1;
    return GORP_OK;
  }
  const char *const adapters[] = {"seqlora", "inclora", "olora", "nlora", "galore", "gorp"};
  int known = 0;
  for (size_t i = 0; i < sizeof(adapters) / sizeof(adapters[0]); i++)
    known |= !strcmp(name, adapters[i]);
  if (!known) GORP_ERR(GORP_EINPUT, "run.method = %s is not built", name);
  const int full = !strcmp(name, "galore") || !strcmp(name, "gorp");
  GORP_CALL(
      lora_parse_targets(&m->lora_targets, c->lora.targets, c->lora.n_targets, "lora.targets"));
  if (!m->lora_targets && !full)
    GORP_ERR(GORP_EINPUT, "lora.targets = none: run.method = %s trains adapters only", name);
  m->lora_r = c->lora.r;
  m->lora_pairs = !strcmp(name, "seqlora") ? 1 : c->data.n_tasks;
  if (!full) return GORP_OK;
  GORP_CALL(
      lora_parse_targets(&m->full_targets, c->full.targets, c->full.n_targets, "full.targets"));
  if (!m->lora_targets && !m->full_targets)
    GORP_ERR(GORP_EINPUT, "lora.targets = none and full.targets = none: nothing would train");
  m->full_lowrank = !strcmp(c->full.optimizer, "lowrank");
  m->full_stream = c->full.stream_grad;
  m->full_rank = c->full.rank;
  if (strcmp(name, "gorp")) return GORP_OK;
  m->bases_lora = c->gorp.project_lora && m->lora_targets;
  m->bases_full = c->gorp.project_full && m->full_targets;
  m->input_axis = !strcmp(c->gorp.axis, "input");
  m->activation_bases = !strcmp(c->gorp.basis_source, "activation");
  if (m->activation_bases && !m->input_axis)
    GORP_ERR(GORP_EINPUT,
             "gorp.basis_source = activation needs gorp.axis = input (input covariances live on "
             "the input axis)");
  return GORP_OK;
}
