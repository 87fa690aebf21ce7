/* Training half of the runner (cl.h): encoding a task's examples, batching them with padding,
 * and the AdamW loop with progress lines. The step itself allocates nothing. */
#include "gorp/cl.h"

#include "gorp/cl_log.h"
#include "gorp/err.h"
#include "gorp/out.h"
#include "gorp/proc.h"
#include "gorp/prompt.h"
#include "gorp/rng.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cl_encode_train(cl_encoded *e, const tokenizer *tok, const cl_task *t, const gorp_config *c,
                    int task_index, int cap_len) {
  memset(e, 0, sizeof(*e));
  int n = t->n_train;
  if (c->data.max_train_per_task > 0 && c->data.max_train_per_task < n)
    n = c->data.max_train_per_task;
  int *perm, *buf_tok, *buf_tgt;
  GORP_ALLOC(perm, t->n_train, "training order");
  rng_permutation(perm, t->n_train, c->run.seed, (uint64_t)task_index << 32);
  GORP_ALLOC(buf_tok, cap_len, "token buffer");
  GORP_ALLOC(buf_tgt, cap_len, "target buffer");
  GORP_ALLOC(e->offset, n, "example offsets");
  GORP_ALLOC(e->item, n, "example item indices");
  GORP_ALLOC(e->length, n, "example lengths");
  size_t total = 0, cap = (size_t)n * 64;
  GORP_ALLOC(e->tokens, cap, "encoded tokens");
  GORP_ALLOC(e->targets, cap, "encoded targets");
  for (int i = 0; i < n; i++) {
    int len = 0;
    GORP_CALL(prompt_encode_train(tok, t, &t->train[perm[i]], c->data.max_source_length,
                                  c->data.max_target_length, buf_tok, buf_tgt, &len, cap_len));
    if (total + (size_t)len > INT_MAX) /* offsets are ints */
      GORP_ERR(GORP_EINPUT, "task %s: its training examples hold more than %d tokens", t->dataset,
               INT_MAX);
    if (total + (size_t)len > cap) {
      while (total + (size_t)len > cap) cap *= 2;
      int *nt = realloc(e->tokens, cap * sizeof(int)),
          *ng = nt ? realloc(e->targets, cap * sizeof(int)) : NULL;
      if (!nt || !ng) GORP_ERR(GORP_EMEM, "out of memory encoding %s", t->dataset);
      e->tokens = nt;
      e->targets = ng;
    }
    memcpy(e->tokens + total, buf_tok, (size_t)len * sizeof(int));
    memcpy(e->targets + total, buf_tgt, (size_t)len * sizeof(int));
    e->offset[i] = (int)total;
    e->item[i] = perm[i];
    e->length[i] = len;
    e->max_len = len > e->max_len ? len : e->max_len;
    total += (size_t)len;
  }
  e->n = n;
  free(perm);
  free(buf_tok);
  free(buf_tgt);
  return GORP_OK;
}

void cl_encoded_free(cl_encoded *e) {
  free(e->offset);
  free(e->item);
  free(e->length);
  free(e->tokens);
  free(e->targets);
  memset(e, 0, sizeof(*e));
}

int cl_encoded_append(cl_encoded *dst, const cl_encoded *src, int item_base) {
  const size_t old_len = dst->n ? (size_t)dst->offset[dst->n - 1] + dst->length[dst->n - 1] : 0;
  const size_t add_len = src->n ? (size_t)src->offset[src->n - 1] + src->length[src->n - 1] : 0;
  if (old_len + add_len > INT_MAX) /* offsets are ints */
    GORP_ERR(GORP_EINPUT, "the tasks' training examples hold more than %d tokens together",
             INT_MAX);
  const int n = dst->n + src->n;
  int *off = realloc(dst->offset, (size_t)n * sizeof(int));
  if (off) dst->offset = off;
  int *len = off ? realloc(dst->length, (size_t)n * sizeof(int)) : NULL;
  if (len) dst->length = len;
  int *item = len ? realloc(dst->item, (size_t)n * sizeof(int)) : NULL;
  if (item) dst->item = item;
  int *tok = item ? realloc(dst->tokens, (old_len + add_len) * sizeof(int)) : NULL;
  if (tok) dst->tokens = tok;
  int *tgt = tok ? realloc(dst->targets, (old_len + add_len) * sizeof(int)) : NULL;
  if (!tgt) GORP_ERR(GORP_EMEM, "out of memory joining the tasks' training examples");
  dst->targets = tgt;
  memcpy(dst->tokens + old_len, src->tokens, add_len * sizeof(int));
  memcpy(dst->targets + old_len, src->targets, add_len * sizeof(int));
  for (int i = 0; i < src->n; i++) {
    dst->offset[dst->n + i] = (int)old_len + src->offset[i];
    dst->length[dst->n + i] = src->length[i];
    dst->item[dst->n + i] = item_base + src->item[i];
  }
  dst->n = n;
  if (src->max_len > dst->max_len) dst->max_len = src->max_len;
  return GORP_OK;
}

int cl_steps_for(const task_train *tt, int n_examples, const char *task, int *steps) {
  if (n_examples < 1) GORP_ERR(GORP_EINPUT, "task %s has no training examples", task);
  /* in 64 bits: epochs x batches per epoch wrapped an int to 0 steps, a run that "trained" */
  const int64_t per_epoch = ((int64_t)n_examples + tt->batch_size - 1) / tt->batch_size;
  int64_t n = per_epoch * tt->epochs;
  if (tt->max_steps > 0 && tt->max_steps < n) n = tt->max_steps;
  if (n > CL_MAX_STEPS)
    GORP_ERR(GORP_EINPUT,
             "task %s: train.epochs = %d x %lld steps per epoch (%d examples, batch %d) = %lld "
             "steps, over gorp's limit of %d steps per task; lower train.epochs or set "
             "train.max_steps",
             task, tt->epochs, (long long)per_epoch, n_examples, tt->batch_size, (long long)n,
             CL_MAX_STEPS);
  *steps = (int)n;
  return GORP_OK;
}

/* Lays out examples order[0..B) right-padded to their longest: tokens/targets (B, T). */
static int batch_fill(int *tokens, int *targets, const cl_encoded *e, const int *order, int B,
                      int pad_id) {
  int T = 0;
  for (int b = 0; b < B; b++) T = e->length[order[b]] > T ? e->length[order[b]] : T;
  for (int b = 0; b < B; b++) {
    const int i = order[b], len = e->length[i];
    memcpy(tokens + (size_t)b * T, e->tokens + e->offset[i], (size_t)len * sizeof(int));
    memcpy(targets + (size_t)b * T, e->targets + e->offset[i], (size_t)len * sizeof(int));
    for (int t = len; t < T; t++) {
      tokens[(size_t)b * T + t] = pad_id;
      targets[(size_t)b * T + t] = -1;
    }
  }
  return T;
}

int cl_train_task(trainer *tr, const cl_encoded *e, int pad_id, const gorp_config *c,
                  const task_train *tt, int task_index, const char *task_name, int start_step,
                  float *losses, int *n_steps, const cl_hook *hook, double *elapsed) {
  const int Bmax = tt->batch_size;
  int steps;
  GORP_CALL(cl_steps_for(tt, e->n, task_name, &steps));
  if (steps > *n_steps) GORP_ERR(GORP_EINPUT, "loss buffer too small for %d steps", steps);
  int *order, *tokens, *targets;
  int64_t *ids;
  GORP_ALLOC(order, e->n, "epoch order");
  GORP_ALLOC(ids, Bmax, "batch example ids");
  GORP_ALLOC(tokens, (size_t)Bmax * e->max_len, "batch tokens");
  GORP_ALLOC(targets, (size_t)Bmax * e->max_len, "batch targets");
  const model *m = trainer_model(tr);
  GORP_CALL(model_reserve(trainer_model(tr), Bmax, e->max_len));
  if (start_step == 0 && m->acts.kept_layers < m->cfg.num_layers)
    out_printf("  train.recompute: activations of %d of %d layers kept, the others recomputed\n",
               m->acts.kept_layers, m->cfg.num_layers);
  const double t0 = proc_now_s(), elapsed0 = hook ? hook->elapsed0 : 0.0;
  double tokens_seen = 0.0;
  trainer_rates lr;
  trainer_rates_of(tr, tt, &lr);
  *elapsed = elapsed0;
  /* the data cursor is a function of the step: a resumed task replays the same batches */
  const int per_epoch = (e->n + Bmax - 1) / Bmax;
  int step = start_step, epoch = start_step / per_epoch, pos = (start_step % per_epoch) * Bmax;
  if (pos == 0) {
    pos = e->n;
  } else {
    rng_permutation(order, e->n, c->run.seed, ((uint64_t)task_index << 32) | (uint64_t)(epoch + 1));
    epoch++;
  }
  while (step < steps) {
    if (pos >= e->n) {
      rng_permutation(order, e->n, c->run.seed,
                      ((uint64_t)task_index << 32) | (uint64_t)(epoch + 1));
      epoch++;
      pos = 0;
    }
    const int B = e->n - pos < Bmax ? e->n - pos : Bmax;
    const int T = batch_fill(tokens, targets, e, order + pos, B, pad_id);
    pos += B;
    for (int b = 0; b < B; b++) ids[b] = e->item[order[pos - B + b]];
    float loss;
    const double s0 = proc_now_s();
    const int rc = trainer_step(tr, tokens, targets, NULL, ids, B, T,
                                ((uint64_t)task_index << 32) | (uint64_t)step, &loss);
    if (rc == GORP_ENUM)
      GORP_ERR(rc, "task %s stopped at step %d; the model keeps the last finite update", task_name,
               step + 1);
    GORP_CALL(rc);
    const double now = proc_now_s();
    long batch_tokens = 0;
    for (int i = 0; i < B; i++) batch_tokens += e->length[order[pos - B + i]];
    tokens_seen += (double)batch_tokens;
    losses[step++] = loss;
    *elapsed = elapsed0 + (now - t0);
    const cl_log_step line = {.task = task_name,
                              .task_index = task_index + 1,
                              .step = step,
                              .steps = steps,
                              .loss = loss,
                              .lr = lr,
                              .grad_norm = trainer_grad_norm(tr),
                              .tokens = batch_tokens,
                              .tokens_per_s = (double)batch_tokens / (now - s0),
                              .elapsed_s = *elapsed};
    if (hook && hook->log) GORP_CALL(cl_log_train(hook->log, &line));
    if (step % c->run.log_every == 0 || step == steps) {
      const double el = proc_now_s() - t0;
      out_printf("  %s step %5d/%d  loss %.6f  %8.0f tok/s  elapsed %6.1fs  eta %6.1fs\n",
                 task_name, step, steps, loss, tokens_seen / el, el,
                 el / (step - start_step) * (steps - step));
      out_flush();
    }
    if (hook && step < steps) {
      const int stop = hook->after_step(hook->ctx, step, losses);
      if (stop) {
        *n_steps = step;
        free(order);
        free(ids);
        free(tokens);
        free(targets);
        return stop;
      }
    }
  }
  *n_steps = step;
  free(order);
  free(ids);
  free(tokens);
  free(targets);
  return GORP_OK;
}

int cl_observe_task(trainer *tr, const cl_encoded *e, int pad_id, const gorp_config *c) {
  const int n = e->n < c->gorp.activation_examples ? e->n : c->gorp.activation_examples;
  const int Bmax = c->train.batch_size;
  int *order, *tokens, *targets, *lengths;
  GORP_ALLOC(order, n, "observed examples");
  GORP_ALLOC(tokens, (size_t)Bmax * e->max_len, "batch tokens");
  GORP_ALLOC(targets, (size_t)Bmax * e->max_len, "batch targets");
  GORP_ALLOC(lengths, Bmax, "batch lengths");
  for (int i = 0; i < n; i++) order[i] = i;
  for (int pos = 0; pos < n; pos += Bmax) {
    const int B = n - pos < Bmax ? n - pos : Bmax;
    const int T = batch_fill(tokens, targets, e, order + pos, B, pad_id);
    for (int b = 0; b < B; b++) lengths[b] = e->length[order[pos + b]];
    GORP_CALL(trainer_observe(tr, tokens, lengths, B, T));
  }
  free(order);
  free(tokens);
  free(targets);
  free(lengths);
  return GORP_OK;
}
