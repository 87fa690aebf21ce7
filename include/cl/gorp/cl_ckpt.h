/* A continual-learning run's checkpoints: the state table of a run (the trainer's entries,
 * trainer_state_describe, then the runner's accuracy matrices and the task's losses so far)
 * handed to ckpt.h, which reads and writes it without knowing the trainer. Loading, the trainer
 * is readied for the checkpoint's position (trainer_resume_at) before its entries are read.
 * Not for: the file format (ckpt.h), when to checkpoint (cmd_run.c). */
#ifndef GORP_CL_CKPT_H
#define GORP_CL_CKPT_H

#include "gorp/ckpt.h"
#include "gorp/cl_results.h"
#include "gorp/trainer.h"

/* Saves the state of tr and res at position p (p->lora_pairs is taken from tr); every rank of d. */
int cl_ckpt_save(const gorp_config *c, const dist *d, trainer *tr, cl_results *res,
                 const ckpt_pos *p);
/* Restores tr (created by trainer_create with this config), res and p from the newest good
 * checkpoint (ckpt_load), every rank of d its shard. */
int cl_ckpt_load(const gorp_config *c, int force_config, const dist *d, trainer *tr,
                 cl_results *res, ckpt_pos *p);
/* Reads checkpoint path into tr (built from the config stored in it) and res by the resume's
 * own code (gorp inspect --verify); serial. */
int cl_ckpt_verify(const char *path, trainer *tr, cl_results *res);

#endif
