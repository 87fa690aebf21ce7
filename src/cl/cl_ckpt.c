/* A run's state table for checkpoints (cl_ckpt.h): which owners hold the state of a run, in the
 * order the file lists them. */
#include "gorp/cl_ckpt.h"

#include "gorp/err.h"

#include <stdlib.h>

typedef struct cl_state {
  trainer *tr;
  cl_results *res;
} cl_state;

/* ckpt_describe_fn of a run: the trainer's entries, /results and, mid-task, /optim/losses. */
static int describe(void *arg, int load, ckpt_pos *p, state_table *tab) {
  cl_state *s = arg;
  if (load) {
    GORP_CALL(trainer_resume_at(s->tr, p->task, !p->done, p->lora_pairs));
    if (p->step > 0) GORP_ALLOC(p->losses, (size_t)p->step, "the task's losses");
  }
  GORP_CALL(trainer_state_describe(s->tr, !p->done, tab));
  const uint64_t dm[2] = {(uint64_t)s->res->T + 1, (uint64_t)s->res->T}; /* (T+1, T) */
  GORP_CALL(state_add_whole(tab, "/results/acc_matrix", STATE_DOUBLE, 2, dm, s->res->acc));
  GORP_CALL(state_add_whole(tab, "/results/in_list", STATE_DOUBLE, 2, dm, s->res->in_list));
  if (p->done || p->step == 0) return GORP_OK; /* a task boundary: no losses */
  const uint64_t n = (uint64_t)p->step;
  return state_add_whole(tab, "/optim/losses", STATE_FLOAT, 1, &n, p->losses);
}

int cl_ckpt_save(const gorp_config *c, const dist *d, trainer *tr, cl_results *res,
                 const ckpt_pos *p) {
  cl_state s = {tr, res};
  const ckpt_state st = {tr->m, describe, &s};
  ckpt_pos at = *p;
  at.lora_pairs = trainer_state_pairs(tr);
  return ckpt_save(c, d, &st, &at);
}

int cl_ckpt_load(const gorp_config *c, int force_config, const dist *d, trainer *tr,
                 cl_results *res, ckpt_pos *p) {
  cl_state s = {tr, res};
  const ckpt_state st = {tr->m, describe, &s};
  return ckpt_load(c, force_config, d, &st, p);
}

int cl_ckpt_verify(const char *path, trainer *tr, cl_results *res) {
  cl_state s = {tr, res};
  const ckpt_state st = {tr->m, describe, &s};
  ckpt_pos p = {0};
  const int rc = ckpt_load_file(path, &st, &p);
  free(p.losses);
  return rc;
}
