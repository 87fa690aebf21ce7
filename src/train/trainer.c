/* The methods' trainable sets, what GORP's shared spaces protect, and the training step (see
 * trainer.h). docs/ALGORITHM.md states every rule implemented here.
 * Not for: the spaces' storage, projections and extensions (gorp_space.c), collectives (dist.c),
 * LAPACK (linalg.c). */
#include "gorp/trainer.h"

#include "gorp/backend.h"
#include "gorp/err.h"
#include "gorp/gorp_basis.h"
#include "gorp/gorp_basis_dist.h"
#include "gorp/out.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const method_names[] = {"seqft", "seqlora", "inclora", "olora",
                                           "nlora", "galore",  "gorp",    "mtl"};

/* Where the protected axis of each matrix lies: the input axis (len = in) or the paper's axis
 * (LoRA A: its rank axis r; full-rank: the compressed gradient's uncompressed axis). */
static int lora_axis_len(const trainer *t, int target) {
  return t->input_axis ? t->lo.in_full[target] : t->lo.r;
}

/* The logical matrix of a sharded protected matrix, or NULL when it is whole on this rank (one
 * rank, or a replicated compressed gradient under TP). */
static const dist_matrix *full_dm(const trainer *t, const full_target *f) {
  return t->m->tp && f->p_dist ? &f->pdm : NULL;
}

static const dist_matrix *lora_dm(const trainer *t, int target) {
  return t->m->tp && lora_factor_split(&t->lo, target, 0) ? &t->lora_dm[target] : NULL;
}

/* Under TP: makes the scratch of the sharded projections fit matrix d with a basis of up to cap
 * columns on its rows (on_rows) or columns. */
static int reserve_dist_scratch(trainer *t, const dist_matrix *d, int on_rows, int cap) {
  const size_t need = gorp_dist_scratch(d, on_rows, cap);
  if (need <= t->tp_scratch_cap) return GORP_OK;
  free(t->tp_scratch);
  GORP_ALLOC(t->tp_scratch, need, "sharded GORP scratch");
  t->tp_scratch_cap = need;
  return GORP_OK;
}

/* Under TP: a basis of up to cap columns on the rows (on_rows) or columns of the sharded matrix
 * d, and the scratch made to fit. Activation bases are kept whole (every rank builds the same one
 * from the gathered inputs, trainer_observe). */
static int space_init_dist(trainer *t, gorp_space *s, const dist_matrix *d, int on_rows, int cap) {
  GORP_CALL(reserve_dist_scratch(t, d, on_rows, cap));
  return gorp_space_init_dist(s, d, on_rows, cap, t->n_tasks, t->activation, &t->dws);
}

/* The workspaces the shared spaces run in: the trainer's, shared with the rank-k optimizers. */
static gorp_space_ws space_ws(trainer *t) {
  return (gorp_space_ws){.ws = &t->ws, .dws = &t->dws, .scratch = t->tp_scratch};
}

static int full_axis_len(const trainer *t, const full_target *f) {
  if (t->input_axis) return f->dm.n;
  if (!f->low.proj) return f->dm.m; /* plain Adam: the output axis */
  return f->low.right ? f->dm.m : f->dm.n;
}

/* The protected axis lies on the rows of the protected matrix (the paper's axis: plain Adam's
 * output axis, or the rows of the compressed (m, k) gradient when Q is on the right). */
static int full_on_rows(const trainer *t, const full_target *f) {
  return !t->input_axis && (!f->low.proj || f->low.right);
}

/* Under TP, the protected matrix and whether it is sharded: the weight's shard (the input axis,
 * plain Adam), or the compressed gradient R when R stays split (optim_lowrank.h); a replicated R
 * is protected as on one rank. */
static int full_protected_dm(trainer *t, full_target *f) {
  const int k = f->low.k;
  f->p_dist = 1;
  if (t->input_axis || !f->low.proj) {
    f->pdm = f->dm;
    return GORP_OK;
  }
  if (f->low.right && f->dm.layout == DIST_ROWS)
    return dist_matrix_init(&f->pdm, f->dm.comm, f->dm.m, k, DIST_ROWS);
  if (!f->low.right && f->dm.layout == DIST_COLS)
    return dist_matrix_init(&f->pdm, f->dm.comm, k, f->dm.n, DIST_COLS);
  f->p_dist = 0;
  return GORP_OK;
}

static int method_index(const char *name, method_kind *k) {
  for (int i = 0; i < (int)(sizeof(method_names) / sizeof(method_names[0])); i++)
    if (!strcmp(method_names[i], name)) {
      *k = (method_kind)i;
      return GORP_OK;
    }
  GORP_ERR(GORP_EINPUT, "run.method = %s is not built", name);
}

static int setup_full(trainer *t, unsigned bits) {
  const gorp_config *c = t->c;
  model *m = t->m;
  const int L = m->cfg.num_layers;
  for (int tg = 0; tg < LORA_N_TARGETS; tg++) t->n_full += (bits >> tg & 1) * L;
  GORP_ALLOC(t->full, t->n_full, "full-rank targets");
  int i = 0;
  for (int l = 0; l < L; l++)
    for (int tg = 0; tg < LORA_N_TARGETS; tg++) {
      if (!(bits >> tg & 1)) continue;
      full_target *f = &t->full[i++];
      f->layer = l;
      f->target = tg;
      f->tensor = model_linear_tensor(l, tg);
      const param_tensor *w = &m->tensors[f->tensor];
      f->m = (int)w->shape[0];
      f->n = (int)w->shape[1];
      /* the logical weight (its split only matters under TP) */
      f->dm = (dist_matrix){.comm = dist_tp_group(m->tp),
                            .m = (int)w->full[0],
                            .n = (int)w->full[1],
                            .layout = w->split == SPLIT_COLS ? DIST_COLS : DIST_ROWS,
                            .local_off = (int)w->split_off,
                            .local_len = (int)w->shape[w->split == SPLIT_COLS]};
      if (!strcmp(c->full.optimizer, "lowrank")) {
        const int mf = (int)w->full[0], nf = (int)w->full[1], k = c->full.rank,
                  small = mf < nf ? mf : nf;
        if (k > small)
          GORP_ERR(GORP_EINPUT, "full.rank = %d is larger than %s (%d x %d) allows (%d)", k,
                   w->name, mf, nf, small);
        svd_opts o;
        svd_opts_default(&o);
        o.seed = c->run.seed;
        o.counter = (uint64_t)f->tensor << 32;
        /* input axis: Q from the input side of the projected gradient for every shape */
        const int right = t->input_axis || mf >= nf; /* the logical shape decides, not the shard */
        GORP_CALL(lowrank_init(&f->low, f->m, f->n, k, right, c->full.update_gap, c->full.lr,
                               c->full.scale, c->train.beta1, c->train.beta2, c->train.eps,
                               c->train.weight_decay,
                               strcmp(c->gorp.svd, "randomized") ? SVD_EXACT : SVD_RANDOMIZED, &o));
        if (m->tp)
          GORP_CALL(lowrank_set_tp(&f->low, &f->dm, &t->dws));
        else
          GORP_CALL(lowrank_reserve(&f->low, &t->ws));
      }
      if (t->projecting && c->gorp.project_full && !f->low.proj && !t->full_before)
        GORP_ALLOC(t->full_before,
                   (size_t)m->cfg.intermediate_size *
                       (m->cfg.hidden_size > m->cfg.num_heads * m->cfg.head_dim
                            ? m->cfg.hidden_size
                            : m->cfg.num_heads * m->cfg.head_dim),
                   "full-rank weight before its update");
      if (t->projecting && c->gorp.project_full) {
        const int len = full_axis_len(t, f);
        /* a rank-k optimizer's moment (its compressed (len, k), or mom Q on the input axis) has
         * rank <= k, so each task adds at most k columns: LLaMA-2-7B's gate basis is then
         * (11008, 15 x 8), not (11008, 11008) */
        const int most = t->n_tasks * c->full.rank,
                  cap = f->low.proj && !t->activation && most < len ? most : len;
        if (m->tp) GORP_CALL(full_protected_dm(t, f));
        if (full_dm(t, f)) {
          GORP_CALL(space_init_dist(t, &f->space, full_dm(t, f), full_on_rows(t, f), cap));
          if (!t->activation) continue;
        } else {
          GORP_CALL(gorp_space_init(&f->space, len, cap, t->n_tasks, t->activation));
        }
        /* the moment the energy rule sees: the rank-k optimizer's compressed (len, k) on the
         * paper's axis; the whole (len, other) otherwise (on the input axis: mom Q) */
        const int other = len == f->n ? f->m : f->n;
        if (f->low.proj && !t->input_axis)
          GORP_CALL(gorp_basis_reserve(&t->ws, len, c->full.rank, cap));
        else
          GORP_CALL(gorp_basis_reserve(&t->ws, len, other > len ? other : len, cap));
      }
    }
  return GORP_OK;
}

static int setup_lora_spaces(trainer *t) {
  const int L = t->lo.L;
  GORP_ALLOC(t->lora_space, (size_t)L * LORA_N_TARGETS, "LoRA bases");
  GORP_ALLOC(t->pair_before, t->lo.pair_size, "LoRA pair before its update");
  for (int l = 0; l < L; l++)
    for (int tg = 0; tg < LORA_N_TARGETS; tg++) {
      if (!(t->lo.targets >> tg & 1)) continue;
      const int len = lora_axis_len(t, tg);
      gorp_space *s = &t->lora_space[l * LORA_N_TARGETS + tg];
      if (lora_dm(t, tg)) {
        GORP_CALL(space_init_dist(t, s, lora_dm(t, tg), !t->input_axis, len));
        if (!t->activation) continue;
      } else {
        GORP_CALL(gorp_space_init(s, len, len, t->n_tasks, t->activation));
      }
      const int other = t->input_axis ? t->lo.r : t->lo.in[tg];
      GORP_CALL(gorp_basis_reserve(&t->ws, len, other > len ? other : len, len));
    }
  return GORP_OK;
}

/* Refuses key combinations that have no meaning (or are not built), naming the keys. */
static int check_keys(const trainer *t) {
  if (t->activation && !t->input_axis)
    GORP_ERR(GORP_EINPUT,
             "gorp.basis_source = activation needs gorp.axis = input (input covariances live on "
             "the input axis)");
  /* a per-task rate changes train.lr, which only seqft and mtl train with */
  for (int i = 0; !t->has_seqft && i < t->c->data.n_tasks; i++) {
    task_train tt;
    config_task_train(t->c, t->c->data.tasks[i], &tt);
    if (tt.lr != t->c->train.lr)
      GORP_ERR(GORP_EINPUT,
               "train.per_task sets lr for %s, but a per-task lr sets train.lr, which run.method "
               "= %s does not use (its rates are lora.lr and full.lr)",
               t->c->data.tasks[i], method_names[t->method]);
  }
  return GORP_OK;
}

/* The guard of a rank-k target's optimizer: its shared space, except under TP on the input axis,
 * where full_compress projects G itself (*on = 0: no guard). */
static lowrank_guard full_guard(const trainer *t, const full_target *f, int *on) {
  const gorp_space *s = &f->space;
  *on = s->S && !(t->input_axis && full_dm(t, f));
  return (lowrank_guard){.S = s->S,
                         .r = s->r,
                         .cap = s->cap,
                         .input_axis = t->input_axis,
                         .project_update = t->c->gorp.project_update,
                         .dm = full_dm(t, f),
                         .scratch = t->tp_scratch};
}

/* A rank-k target's gradient G compressed (lowrank_compress), after the TP input-axis guard. */
static int full_compress(trainer *t, full_target *f, float *G) {
  if (t->input_axis && full_dm(t, f)) { /* TP: the input-axis guard here */
    const gorp_space_ws w = space_ws(t);
    GORP_CALL(gorp_space_project(&f->space, G, f->m, f->n, 1, full_dm(t, f), &w));
  }
  int on;
  const lowrank_guard g = full_guard(t, f, &on);
  return lowrank_compress(&f->low, G, on ? &g : NULL, &t->ws);
}

/* model.grad_hook under full.stream_grad: layer l's rank-k targets' gradients, complete in the
 * model's slot, are summed over the data-parallel ranks, counted for clipping and compressed;
 * the slot is then free for the next layer. */
static int stream_hook(void *ctx, model *m, int l) {
  trainer *t = ctx;
  const int per_layer = t->n_full / m->cfg.num_layers; /* setup_full's order: layer, target */
  for (int j = 0; j < per_layer; j++) {
    full_target *f = &t->full[l * per_layer + j];
    float *G = model_grad(m, f->tensor);
    const grad_segment g = {G, (size_t)f->m * f->n};
    if (t->dist) GORP_CALL(dist_sum_floats(t->dist, G, g.n));
    t->stream_sumsq += grad_sumsq(&g, 1);
    GORP_CALL(full_compress(t, f, G));
  }
  return GORP_OK;
}

/* Marks m's tensors as method k trains them: every one (seqft, mtl), the linears of full.targets
 * (galore, gorp), none (the adapter methods: their factors live in lora.h). */
static int mark_trainable(model *m, const gorp_config *c, method_kind k) {
  const int all = k == METHOD_SEQFT || k == METHOD_MTL;
  unsigned bits = 0;
  if (k == METHOD_GALORE || k == METHOD_GORP)
    GORP_CALL(lora_parse_targets(&bits, c->full.targets, c->full.n_targets, "full.targets"));
  for (int i = 0; i < m->n_tensors; i++) GORP_CALL(model_set_trainable(m, i, all));
  for (int l = 0; l < m->cfg.num_layers; l++)
    for (int tg = 0; tg < LORA_N_TARGETS; tg++)
      if (bits >> tg & 1) GORP_CALL(model_set_trainable(m, model_linear_tensor(l, tg), 1));
  return GORP_OK;
}

int trainer_prepare_model(model *m, const void *config) {
  const gorp_config *c = config;
  method_kind k;
  GORP_CALL(method_index(c->run.method, &k));
  GORP_CALL(mark_trainable(m, c, k));
  m->trained_bf16 = !strcmp(c->model.trained_products, "bf16");
  return strcmp(c->model.dtype, "bf16") ? GORP_OK : model_bf16_frozen(m);
}

int trainer_create(trainer *t, model *m, const gorp_config *c, const char *method, int n_tasks,
                   const dist *d) {
  memset(t, 0, sizeof(*t));
  t->c = c;
  t->m = m;
  t->n_tasks = n_tasks;
  t->dist = d;
  GORP_CALL(method_index(method, &t->method));
  t->has_seqft = t->method == METHOD_SEQFT || t->method == METHOD_MTL;
  t->has_lora = !t->has_seqft;
  t->projecting = t->method == METHOD_GORP;
  t->input_axis = t->projecting && !strcmp(c->gorp.axis, "input");
  t->activation = t->projecting && !strcmp(c->gorp.basis_source, "activation");
  GORP_CALL(check_keys(t));
  /* activation bases read every layer's inputs after one forward pass (trainer_observe) */
  if (c->train.recompute && t->activation)
    GORP_ERR(GORP_EINPUT, "train.recompute = true does not go with gorp.basis_source = activation "
                          "(its statistics read every layer's inputs after one forward pass); "
                          "use moment bases or train.recompute = false");
  m->recompute = c->train.recompute;
  GORP_CALL(mark_trainable(m, c, t->method));
  unsigned targets = 0;
  if (t->has_lora)
    GORP_CALL(lora_parse_targets(&targets, c->lora.targets, c->lora.n_targets, "lora.targets"));
  if (t->has_lora && !targets) {
    /* galore and gorp can train full-rank weights alone; the adapter methods cannot */
    if (t->method != METHOD_GALORE && t->method != METHOD_GORP)
      GORP_ERR(GORP_EINPUT, "lora.targets = none: run.method = %s trains adapters only", method);
    t->has_lora = 0;
  }
  if (m->tp) GORP_CALL(linalg_dist_ws_init(&t->dws, m->tp->tp));
  if (t->has_lora) {
    GORP_CALL(lora_create(&t->lo, m, targets, c->lora.r, c->lora.alpha, c->lora.dropout,
                          t->method == METHOD_SEQLORA ? 1 : n_tasks));
    m->lora = &t->lo;
    for (int tg = 0; m->tp && tg < LORA_N_TARGETS; tg++)
      if (lora_factor_split(&t->lo, tg, 0))
        GORP_CALL(
            dist_matrix_init(&t->lora_dm[tg], m->tp->tp, t->lo.r, t->lo.in_full[tg], DIST_COLS));
    if (t->projecting && c->gorp.project_lora) GORP_CALL(setup_lora_spaces(t));
  }
  if (t->method == METHOD_GALORE || t->method == METHOD_GORP) {
    unsigned bits;
    GORP_CALL(lora_parse_targets(&bits, c->full.targets, c->full.n_targets, "full.targets"));
    GORP_CALL(setup_full(t, bits));
    if (!t->has_lora && !t->n_full)
      GORP_ERR(GORP_EINPUT, "lora.targets = none and full.targets = none: nothing would train");
  }
  /* full.stream_grad: the rank-k targets' gradients compressed layer by layer in backward */
  t->streaming = t->n_full && c->full.stream_grad && !strcmp(c->full.optimizer, "lowrank");
  for (int i = 0; t->streaming && i < t->n_full; i++)
    GORP_CALL(model_set_streamed(m, t->full[i].tensor));
  if (t->streaming) {
    m->grad_hook = stream_hook;
    m->grad_hook_ctx = t;
  }
  GORP_CALL(model_alloc_grads(m));
  if (m->tp) {
    t->segs_cap = (size_t)m->n_tensors + 2 * (size_t)m->cfg.num_layers * LORA_N_TARGETS;
    GORP_ALLOC(t->segs, 2 * t->segs_cap, "gradient segments");
  }
  t->drop.seed = c->run.seed;
  return GORP_OK;
}

void trainer_free(trainer *t) {
  if (t->streaming) t->m->grad_hook = NULL;
  if (t->has_lora) {
    if (t->lora_space)
      for (int i = 0; i < t->lo.L * LORA_N_TARGETS; i++) gorp_space_free(&t->lora_space[i]);
    lora_free(&t->lo);
    t->m->lora = NULL;
  }
  for (int i = 0; i < t->n_full; i++) {
    lowrank_free(&t->full[i].low);
    adamw_free(&t->full[i].plain);
    gorp_space_free(&t->full[i].space);
  }
  free(t->full);
  free(t->lora_space);
  free(t->pair_before);
  free(t->full_before);
  free(t->segs);
  free(t->tp_scratch);
  if (t->dws.ready) linalg_dist_ws_free(&t->dws);
  adamw_free(&t->opt_all);
  adamw_free(&t->opt_lora);
  linalg_ws_free(&t->ws);
  memset(t, 0, sizeof(*t));
}

/* input axis: a new A starts inside the free complement of its basis, A <- A - (A S) S^T. */
static int start_in_complement(trainer *t) {
  lora *lo = &t->lo;
  float *pair = lo->params + (size_t)(lo->n_pairs - 1) * lo->pair_size;
  const gorp_space_ws w = space_ws(t);
  for (int l = 0; l < lo->L; l++)
    for (int tg = 0; tg < LORA_N_TARGETS; tg++) {
      if (!(lo->targets >> tg & 1)) continue;
      const gorp_space *s = &t->lora_space[l * LORA_N_TARGETS + tg];
      GORP_CALL(
          gorp_space_project(s, lora_A(lo, pair, l, tg), lo->r, lo->in[tg], 1, lora_dm(t, tg), &w));
    }
  return GORP_OK;
}

int trainer_begin_task(trainer *t, int task, const task_train *tt) {
  const gorp_config *c = t->c;
  adamw_free(&t->opt_all);
  adamw_free(&t->opt_lora);
  if (t->has_seqft)
    GORP_CALL(adamw_init(&t->opt_all, t->m->ops, t->m->n_grads, tt->lr, c->train.beta1,
                         c->train.beta2, c->train.eps, c->train.weight_decay));
  if (t->has_lora) {
    GORP_CALL(lora_begin_task(&t->lo, c->run.seed, task, t->method == METHOD_SEQLORA));
    GORP_CALL(adamw_init(&t->opt_lora, t->lo.ops, t->lo.pair_size, c->lora.lr, c->train.beta1,
                         c->train.beta2, c->train.eps, c->train.weight_decay));
    if (t->lora_space && t->input_axis) GORP_CALL(start_in_complement(t));
  }
  for (int i = 0; i < t->n_full; i++) {
    full_target *f = &t->full[i];
    if (f->low.proj) {
      lowrank_reset(&f->low);
    } else {
      adamw_free(&f->plain);
      GORP_CALL(adamw_init(&f->plain, t->m->ops, (size_t)f->m * f->n, c->full.lr, c->train.beta1,
                           c->train.beta2, c->train.eps, c->train.weight_decay));
    }
  }
  return GORP_OK;
}

int trainer_resume_at(trainer *t, int task, int mid_task, int lora_pairs) {
  const gorp_config *c = t->c;
  if (task < -1 || task >= t->n_tasks)
    GORP_ERR(GORP_EINPUT, "checkpoint: task index %d outside this run's %d tasks", task,
             t->n_tasks);
  if (t->has_lora) {
    const int reuse = t->method == METHOD_SEQLORA;
    const int before = mid_task && !reuse ? lora_pairs - 1 : lora_pairs;
    if (before < 0 || lora_pairs > t->lo.max_pairs)
      GORP_ERR(GORP_EINPUT, "checkpoint: %d LoRA pairs do not fit this run (%d at most)",
               lora_pairs, t->lo.max_pairs);
    t->lo.n_pairs = before;
  }
  if (!mid_task) return GORP_OK;
  task_train tt;
  config_task_train(c, t->method == METHOD_MTL ? "" : c->data.tasks[task], &tt);
  return trainer_begin_task(t, task, &tt);
}

static int step_lora(trainer *t) {
  lora *lo = &t->lo;
  float *pair = lo->params + (size_t)(lo->n_pairs - 1) * lo->pair_size;
  const int proj_update = t->lora_space && t->c->gorp.project_update;
  const gorp_space_ws w = space_ws(t);
  if (t->lora_space)
    for (int l = 0; l < lo->L; l++)
      for (int tg = 0; tg < LORA_N_TARGETS; tg++)
        if (lo->targets >> tg & 1)
          GORP_CALL(gorp_space_project(&t->lora_space[l * LORA_N_TARGETS + tg],
                                       lora_A(lo, lo->grads, l, tg), lo->r, lo->in[tg],
                                       t->input_axis, lora_dm(t, tg), &w));
  if (proj_update) memcpy(t->pair_before, pair, lo->pair_size * sizeof(float));
  GORP_CALL(adamw_step(&t->opt_lora, pair, lo->grads));
  if (!proj_update) return GORP_OK;
  for (int l = 0; l < lo->L; l++)
    for (int tg = 0; tg < LORA_N_TARGETS; tg++)
      if (lo->targets >> tg & 1)
        GORP_CALL(gorp_space_project_step(&t->lora_space[l * LORA_N_TARGETS + tg],
                                          lora_A(lo, pair, l, tg),
                                          lora_A(lo, t->pair_before, l, tg), lo->r, lo->in[tg],
                                          t->input_axis, lora_dm(t, tg), &w));
  return GORP_OK;
}

static int step_full(trainer *t, full_target *f) {
  model *m = t->m;
  float *W = m->params + m->tensors[f->tensor].offset;
  float *G = model_grad(m, f->tensor);
  const gorp_space *s = &f->space;
  const gorp_space_ws w = space_ws(t);
  if (f->low.proj) {
    if (!m->tensors[f->tensor].streamed) GORP_CALL(full_compress(t, f, G));
    int on;
    const lowrank_guard g = full_guard(t, f, &on);
    /* a streamed G was compressed unclipped: clipping scales R instead (lowrank_apply) */
    return lowrank_apply(&f->low, W, m->tensors[f->tensor].streamed ? t->clip_coef : 1.0f,
                         on ? &g : NULL, &t->ws);
  }
  /* plain Adam: the gradient projected on the protected axis, with project_update the step too
   * (Adam's element-wise scaling would otherwise leave the complement) */
  GORP_CALL(gorp_space_project(s, G, f->m, f->n, t->input_axis, full_dm(t, f), &w));
  const int proj_update = s->S && s->r > 0 && t->c->gorp.project_update;
  if (proj_update) memcpy(t->full_before, W, (size_t)f->m * f->n * sizeof(float));
  GORP_CALL(adamw_step(&f->plain, W, G));
  if (proj_update)
    GORP_CALL(gorp_space_project_step(s, W, t->full_before, f->m, f->n, t->input_axis,
                                      full_dm(t, f), &w));
  return GORP_OK;
}

/* Global-norm clipping over every trainable gradient. Under TP a split tensor's squares are
 * summed over the group and a replicated one (identical on every rank) counted once; on one rank
 * the two arrays are the two segments, as always. */
static int clip_grads(trainer *t) {
  model *m = t->m;
  const float clip = t->c->train.grad_clip;
  if (!m->tp) {
    grad_segment segs[2];
    int n = 0;
    if (m->n_grads) segs[n++] = (grad_segment){m->grads, m->n_grads};
    if (t->has_lora) segs[n++] = (grad_segment){t->lo.grads, t->lo.pair_size};
    const double norm = sqrt(grad_sumsq(segs, n) + t->stream_sumsq);
    grad_clip_scale(segs, n, clip, norm);
    t->clip_coef = grad_clip_coef(clip, norm);
    t->grad_norm = norm;
    return GORP_OK;
  }
  const size_t cap = t->segs_cap;
  grad_segment *segs = t->segs; /* [0, cap): split, [cap, 2 cap): replicated */
  int n_split = 0, n_rep = 0;
  for (int i = 0; i < m->n_tensors; i++) {
    const param_tensor *p = &m->tensors[i];
    if (!p->trainable || p->streamed) continue; /* streamed: counted in stream_sumsq */
    const grad_segment g = {m->grads + p->grad_offset, p->numel};
    if (p->split)
      segs[n_split++] = g;
    else
      segs[cap + n_rep++] = g;
  }
  const lora *lo = &t->lo;
  for (int l = 0; t->has_lora && l < lo->L; l++)
    for (int tg = 0; tg < LORA_N_TARGETS; tg++) {
      if (!(lo->targets >> tg & 1)) continue;
      const grad_segment a = {lora_A(lo, lo->grads, l, tg), (size_t)lo->r * lo->in[tg]},
                         b = {lora_Bt(lo, lo->grads, l, tg), (size_t)lo->r * lo->out[tg]};
      if (lora_factor_split(lo, tg, 0))
        segs[n_split++] = a;
      else
        segs[cap + n_rep++] = a;
      if (lora_factor_split(lo, tg, 1))
        segs[n_split++] = b;
      else
        segs[cap + n_rep++] = b;
    }
  double ss = grad_sumsq(segs, n_split) + t->stream_sumsq; /* streamed tensors are split */
  GORP_CALL(dist_tp_sum_doubles(m->tp, &ss, 1));
  const double norm = sqrt(ss + grad_sumsq(segs + cap, n_rep));
  t->grad_norm = norm;
  grad_clip_scale(segs, n_split, clip, norm);
  grad_clip_scale(segs + cap, n_rep, clip, norm);
  t->clip_coef = grad_clip_coef(clip, norm);
  return GORP_OK;
}

int trainer_step(trainer *t, const int *tokens, const int *targets, const float *loss_weights,
                 const int64_t *example_ids, int B, int T, uint64_t step_key, float *loss) {
  model *m = t->m;
  GORP_CALL(model_zero_grads(m));
  t->stream_sumsq = 0.0;
  if (t->has_lora) GORP_CALL(t->lo.ops->zero(t->lo.grads, t->lo.pair_size * sizeof(float)));
  /* this rank's rows of the global batch; the loss is divided by the global answer-token count,
   * so summing the ranks' gradients gives the global batch's gradient */
  int lo = 0, hi = B, count = 0;
  if (t->dist) dist_batch_slice(t->dist, B, &lo, &hi);
  for (int i = 0; i < B * T; i++) count += targets[i] >= 0;
  /* per-position weights already carry their normalisation (gorp pretrain's per-example mean) */
  const float div = loss_weights ? 1.0f : (float)(count ? count : 1);
  double global_loss = 0.0;
  int rc = GORP_OK;
  if (hi > lo) {
    t->drop.example_ids = example_ids + lo;
    t->drop.T = T;
    t->drop.step_key = step_key;
    const model_step step = {.dropout = &t->drop,
                             .loss_weights = loss_weights ? loss_weights + (size_t)lo * T : NULL,
                             .head = MODEL_HEAD_TARGETS};
    float local;
    rc = model_forward(m, tokens + (size_t)lo * T, targets + (size_t)lo * T, &step, hi - lo, T, div,
                       &local);
    if (!rc && !isfinite(local))
      rc = GORP_ERROR(GORP_ENUM, "loss became %f; this step's update was not applied", local);
    if (!rc) rc = model_backward(m);
    global_loss = hi > lo ? local : 0.0;
  } else if (m->grad_hook) { /* no rows here: zeros join the other data-parallel ranks' sums */
    for (int l = m->cfg.num_layers - 1; l >= 0 && !rc; l--) {
      memset(m->grad_slot, 0, m->n_grad_slot * sizeof(float));
      rc = m->grad_hook(m->grad_hook_ctx, m, l);
    }
  }
  GORP_CALL(rc);
  if (t->has_lora) GORP_CALL(lora_tp_sum_grads(&t->lo));
  if (t->dist) {
    GORP_CALL(dist_sum_doubles(t->dist, &global_loss, 1));
    GORP_CALL(dist_sum_floats(t->dist, m->grads, m->n_grads));
    if (t->has_lora) GORP_CALL(dist_sum_floats(t->dist, t->lo.grads, t->lo.pair_size));
  }
  *loss = (float)global_loss;
  /* the regularisers' gradients join the loss's before clipping (the reported loss is the
   * cross-entropy alone); every rank adds them once, after the sum */
  double penalty; /* its value is not reported */
  if (t->method == METHOD_OLORA)
    GORP_CALL(
        lora_olora_penalty(&t->lo, t->c->lora.olora_lambda1, t->c->lora.olora_lambda2, &penalty));
  if (t->method == METHOD_NLORA) lora_l1_penalty(&t->lo, t->c->lora.nlora_lambda);
  GORP_CALL(clip_grads(t));
  if (t->has_seqft) GORP_CALL(adamw_step(&t->opt_all, m->params, m->grads));
  if (t->has_lora) GORP_CALL(step_lora(t));
  for (int i = 0; i < t->n_full; i++) GORP_CALL(step_full(t, &t->full[i]));
  return GORP_OK;
}

/* The layer input that linear (layer, target) saw in the last forward pass: (N, in). */
static const float *linear_input(const model *m, int layer, int target, int N) {
  const model_acts *a = &m->acts;
  const model_config *c = &m->cfg;
  const size_t C = c->hidden_size, QD = (size_t)m->H_loc * c->head_dim, F = m->F_loc;
  switch (target) {
  case LORA_O:
    return a->atty + (size_t)layer * N * QD;
  case LORA_GATE:
  case LORA_UP:
    return a->ln2 + (size_t)layer * N * C;
  case LORA_DOWN:
    return a->h + (size_t)layer * N * F;
  default: /* q, k, v */
    return a->ln1 + (size_t)layer * N * C;
  }
}

/* The input of linear (layer, target), (N, in) over the whole input axis: under TP the blocks of
 * a row-parallel layer's input (o, down) are gathered from the group into X, two halves of
 * scratch (N, in) each; otherwise the activation itself. */
static int observed_input(trainer *t, int layer, int target, int N, float *scratch,
                          const float **X) {
  model *m = t->m;
  *X = linear_input(m, layer, target, N);
  if (!m->tp || (target != LORA_O && target != LORA_DOWN)) return GORP_OK;
  const int p = m->tp_size;
  const size_t in_l = target == LORA_O ? (size_t)m->H_loc * m->cfg.head_dim : (size_t)m->F_loc,
               in = in_l * p, part = (size_t)N * in_l;
  float *parts = scratch, *whole = scratch + (size_t)N * in; /* (p, N, in_l) -> (N, in) */
  GORP_CALL(dist_tp_gather_floats(m->tp, *X, part, parts));
  for (int r = 0; r < p; r++)
    for (int n = 0; n < N; n++)
      memcpy(whole + (size_t)n * in + (size_t)r * in_l, parts + (size_t)r * part + (size_t)n * in_l,
             in_l * sizeof(float));
  *X = whole;
  return GORP_OK;
}

int trainer_observe(trainer *t, const int *tokens, const int *lengths, int B, int T) {
  model *m = t->m;
  int lo = 0, hi = B;
  if (t->dist) dist_batch_slice(t->dist, B, &lo, &hi);
  if (hi == lo) return GORP_OK; /* this rank's share of the batch is empty */
  tokens += (size_t)lo * T;
  lengths += lo;
  B = hi - lo;
  const model_step inputs_only = {.head = MODEL_HEAD_NONE};
  GORP_CALL(model_forward(m, tokens, NULL, &inputs_only, B, T, 0.0f, NULL));
  const int N = B * T;
  const size_t need = (size_t)N * model_widest(&m->cfg, 1); /* whole inputs, gathered under TP */
  float *rows, *gathered = NULL;
  GORP_ALLOC(rows, need, "observed layer inputs");
  int rc = GORP_OK;
  if (m->tp && !(gathered = malloc(2 * need * sizeof(float))))
    rc = GORP_ERROR(GORP_EMEM, "out of memory gathering inputs");
  const float *X;
  if (t->lora_space)
    for (int l = 0; l < t->lo.L && !rc; l++)
      for (int tg = 0; tg < LORA_N_TARGETS && !rc; tg++)
        if (t->lo.targets >> tg & 1 && !(rc = observed_input(t, l, tg, N, gathered, &X)))
          rc = gorp_space_observe(&t->lora_space[l * LORA_N_TARGETS + tg], X, lengths, B, T, rows);
  for (int i = 0; i < t->n_full && !rc; i++) {
    const full_target *f = &t->full[i];
    if (f->space.cov && !(rc = observed_input(t, f->layer, f->target, N, gathered, &X)))
      rc = gorp_space_observe(&t->full[i].space, X, lengths, B, T, rows);
  }
  free(rows);
  free(gathered);
  return rc;
}

static int end_lora(trainer *t, int *added_total) {
  lora *lo = &t->lo;
  const float e = t->c->gorp.energy;
  const gorp_space_ws w = space_ws(t);
  for (int l = 0; l < lo->L; l++)
    for (int tg = 0; tg < LORA_N_TARGETS; tg++) {
      if (!(lo->targets >> tg & 1)) continue;
      gorp_space *s = &t->lora_space[l * LORA_N_TARGETS + tg];
      int added = 0;
      if (t->activation) {
        GORP_CALL(gorp_space_extend_from_cov(s, t->dist, e, &added, &w));
      } else { /* Adam's first moment of this task's A (r, in): on its columns on the input axis */
        const float *M = lora_A(lo, t->opt_lora.m, l, tg);
        GORP_CALL(gorp_space_extend(s, M, t->input_axis ? lo->r : lo->in[tg], t->input_axis,
                                    lora_dm(t, tg), e, &added, &w));
      }
      *added_total += added;
    }
  return GORP_OK;
}

static int end_full(trainer *t, full_target *f, int *added) {
  gorp_space *s = &f->space;
  const float e = t->c->gorp.energy;
  const gorp_space_ws w = space_ws(t);
  if (t->activation) return gorp_space_extend_from_cov(s, t->dist, e, added, &w);
  if (!f->low.proj) /* plain Adam's moment (m, n): the input axis is its columns */
    return gorp_space_extend(s, f->plain.m, t->input_axis ? f->m : f->n, t->input_axis,
                             full_dm(t, f), e, added, &w);
  if (!t->input_axis) /* the compressed moment: (m, k) on its rows, or (k, n) on its columns */
    return gorp_space_extend(s, f->low.mom, f->low.k, !f->low.right, full_dm(t, f), e, added, &w);
  /* input axis: the moment brought back to (m, n) = mom (m, k) Q (k, n), on its columns (under
   * TP with the columns split: this rank's columns of Q) */
  float *M;
  GORP_ALLOC(M, (size_t)f->m * f->n, "uncompressed moment");
  const int split_cols = t->m->tp && f->dm.layout == DIST_COLS;
  int rc =
      backend_get()->gemm(0, 0, f->m, f->n, f->low.k, 1.0f, f->low.mom, f->low.k,
                          f->low.proj + (split_cols ? f->dm.local_off : 0), f->dm.n, 0.0f, M, f->n);
  if (!rc) rc = gorp_space_extend(s, M, f->m, 1, full_dm(t, f), e, added, &w);
  free(M);
  return rc;
}

int trainer_end_task(trainer *t, int task) {
  if (!t->projecting) return GORP_OK;
  int lora_added = 0, full_added = 0, lora_r = 0, lora_len = 0, full_r = 0, full_len = 0;
  if (t->lora_space) {
    GORP_CALL(end_lora(t, &lora_added));
    for (int i = 0; i < t->lo.L * LORA_N_TARGETS; i++) {
      gorp_space *s = &t->lora_space[i];
      if (!s->S) continue;
      s->task_end[task] = s->r;
      lora_r += s->r;
      lora_len += s->axis; /* the logical axis (len is a shard under TP) */
    }
  }
  for (int i = 0; i < t->n_full; i++) {
    full_target *f = &t->full[i];
    if (!f->space.S) continue;
    int added = 0;
    GORP_CALL(end_full(t, f, &added));
    f->space.task_end[task] = f->space.r;
    full_added += added;
    full_r += f->space.r;
    full_len += f->space.axis;
  }
  out_printf(
      "  shared space after task %d: LoRA A bases %d/%d columns (+%d), full-rank bases %d/%d "
      "(+%d)\n",
      task + 1, lora_r, lora_len, lora_added, full_r, full_len, full_added);
  return GORP_OK;
}

int trainer_set_lr(trainer *t, float lr) {
  GORP_CHECK(
      t->has_seqft, GORP_EINPUT,
      "run.method = %s: a learning-rate schedule drives seqft and mtl only (their AdamW over "
      "every weight)",
      method_names[t->method]);
  t->opt_all.lr = lr;
  return GORP_OK;
}

void trainer_rates_of(const trainer *t, const task_train *tt, trainer_rates *r) {
  r->lr = t->has_seqft ? tt->lr : 0.0;
  r->lora_lr = !t->has_seqft && t->has_lora ? t->c->lora.lr : 0.0;
  r->full_lr = !t->has_seqft && t->n_full ? t->c->full.lr : 0.0;
}

void trainer_lr_text(const trainer *t, const task_train *tt, char *buf, size_t n) {
  trainer_rates r;
  trainer_rates_of(t, tt, &r);
  if (r.lr > 0.0) {
    snprintf(buf, n, "lr %g", r.lr);
    return;
  }
  const int k = r.lora_lr > 0.0 ? snprintf(buf, n, "lora.lr %g", r.lora_lr) : 0;
  if (r.full_lr > 0.0 && (size_t)k < n)
    snprintf(buf + k, n - (size_t)k, "%sfull.lr %g", k ? ", " : "", r.full_lr);
}

double trainer_grad_norm(const trainer *t) {
  return t->grad_norm;
}

model *trainer_model(const trainer *t) {
  return t->m;
}

method_kind trainer_method(const trainer *t) {
  return t->method;
}

int trainer_observes(const trainer *t) {
  return t->activation;
}

const lora *trainer_lora(const trainer *t) {
  return t->has_lora ? &t->lo : NULL;
}
