/* The methods' trainable sets and the training step (see trainer.h). */
#include "gorp/trainer.h"

#include "gorp/err.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const method_names[] = {"seqft", "seqlora", "inclora"};

int trainer_create(trainer *t, model *m, const gorp_config *c, int n_tasks) {
  memset(t, 0, sizeof(*t));
  t->c = c;
  t->m = m;
  int k = 0;
  while (k < (int)(sizeof(method_names) / sizeof(method_names[0])) &&
         strcmp(method_names[k], c->run.method))
    k++;
  if (k == (int)(sizeof(method_names) / sizeof(method_names[0])))
    GORP_ERR(GORP_EINPUT, "run.method = %s is not built", c->run.method);
  t->method = (method_kind)k;
  t->has_full = t->method == METHOD_SEQFT;
  t->has_lora = !t->has_full;
  for (int i = 0; i < m->n_tensors; i++) model_set_trainable(m, i, t->has_full);
  GORP_CALL(model_alloc_grads(m));
  if (t->has_lora) {
    unsigned targets;
    GORP_CALL(lora_parse_targets(&targets, c->lora.targets, c->lora.n_targets, "lora.targets"));
    GORP_CALL(lora_create(&t->lo, &m->cfg, targets, c->lora.r, c->lora.alpha, c->lora.dropout,
                          t->method == METHOD_SEQLORA ? 1 : n_tasks));
    m->lora = &t->lo;
  }
  t->drop.seed = c->run.seed;
  return GORP_OK;
}

void trainer_free(trainer *t) {
  if (t->has_lora) {
    lora_free(&t->lo);
    t->m->lora = NULL;
  }
  adamw_free(&t->opt_full);
  adamw_free(&t->opt_lora);
  memset(t, 0, sizeof(*t));
}

int trainer_begin_task(trainer *t, int task, const task_train *tt) {
  const gorp_config *c = t->c;
  adamw_free(&t->opt_full);
  adamw_free(&t->opt_lora);
  if (t->has_full)
    GORP_CALL(adamw_init(&t->opt_full, t->m->n_grads, tt->lr, c->train.beta1, c->train.beta2,
                         c->train.eps, c->train.weight_decay));
  if (t->has_lora) {
    GORP_CALL(lora_begin_task(&t->lo, c->run.seed, task, t->method == METHOD_SEQLORA));
    GORP_CALL(adamw_init(&t->opt_lora, t->lo.pair_size, c->lora.lr, c->train.beta1, c->train.beta2,
                         c->train.eps, c->train.weight_decay));
  }
  return GORP_OK;
}

int trainer_step(trainer *t, const int *tokens, const int *targets, const int64_t *example_ids,
                 int B, int T, uint64_t step_key, float *loss) {
  model *m = t->m;
  model_zero_grads(m);
  if (t->has_lora) memset(t->lo.grads, 0, t->lo.pair_size * sizeof(float));
  t->drop.example_ids = example_ids;
  t->drop.T = T;
  t->drop.step_key = step_key;
  m->dropout = &t->drop;
  int rc = model_forward(m, tokens, targets, B, T, 0.0f, loss);
  if (!rc && !isfinite(*loss))
    rc = gorp_error(__FILE__, __LINE__, __func__, GORP_ENUM,
                    "loss became %f; this step's update was not applied", *loss);
  if (!rc) rc = model_backward(m);
  m->dropout = NULL;
  GORP_CALL(rc);
  grad_segment segs[2];
  int n = 0;
  if (t->has_full) segs[n++] = (grad_segment){m->grads, m->n_grads};
  if (t->has_lora) segs[n++] = (grad_segment){t->lo.grads, t->lo.pair_size};
  grad_clip_norm(segs, n, t->c->train.grad_clip);
  if (t->has_full) adamw_step(&t->opt_full, m->params, m->grads);
  if (t->has_lora)
    adamw_step(&t->opt_lora, t->lo.params + (size_t)(t->lo.n_pairs - 1) * t->lo.pair_size,
               t->lo.grads);
  return GORP_OK;
}
