/* Checkpoints (docs/CHECKPOINT.md): one HDF5 file per checkpoint with the resolved config, the
 * model, the LoRA pairs, every optimizer state, GORP's bases, the accuracy matrices and the
 * position in the task sequence, each dataset with a crc32; saved atomically (tmp, fsync, rename,
 * fsync of the folder, then LATEST the same way), the last run.checkpoint_keep kept. Loading
 * verifies version, config and checksums and falls back to the previous good checkpoint when
 * LATEST's is damaged. A resumed run ends bit-identical to an uninterrupted one (on the same
 * layout; to float tolerance on another).
 * With the trainer's dist of more than one rank, ckpt_save and ckpt_load are collective: every
 * rank calls them, writes or reads its blocks of the logical (unsharded) tensors through parallel
 * HDF5 (h5io.h), and every rank returns the same code; so a checkpoint saved under one TP/DP
 * layout resumes under any other, the rank-k optimizer's and GORP's bases included (their
 * logical layout: docs/CHECKPOINT.md).
 * Not for: results.h5 and model.h5 (cl_results.h, modelfile.h). */
#ifndef GORP_CKPT_H
#define GORP_CKPT_H

#include "gorp/cl_results.h"
#include "gorp/config.h"
#include "gorp/trainer.h"

enum { CKPT_EXIT_RESUBMIT = 75 }; /* EX_TEMPFAIL: checkpointed on a signal, resubmit the job */
/* The last checkpoint number (ckpt_NNNNNN.h5 grows past six digits; a save beyond is refused). */
#define CKPT_MAX_SEQUENCE 999999999999L

/* Where the run stands. */
typedef struct ckpt_pos {
  int task;      /* task in progress (0-based) */
  int step;      /* its steps taken */
  int done;      /* 1: task `task` is trained, its bases built and its row evaluated */
  float *losses; /* (step) the task's losses so far (malloc'd by ckpt_load) */
} ckpt_pos;

/* Takes the exclusive lock of run.out_dir for the rest of this process (flock on
 * <out_dir>/gorp.lock, which names the holder: pid, host, start time). World rank 0 takes it; every
 * rank returns the same code: GORP_EIO, naming the holder, when another run holds it. */
int ckpt_lock(const gorp_config *c, const dist *d);

/* Saves into <out_dir>/checkpoints/ and updates LATEST (every rank of t->dist). */
int ckpt_save(const gorp_config *c, const trainer *t, const cl_results *res, const ckpt_pos *p);

/* 1 when <out_dir>/checkpoints holds a checkpoint (the run should resume). */
int ckpt_exists(const gorp_config *c);

/* Restores t (created by trainer_create with this config, its dist set), res and p from the
 * newest good checkpoint, every rank of t->dist its shard. Only the keys of the run hash are
 * compared (config.h CONFIG_RUN); force_config accepts a change of those that name where an
 * input lies or the backend (CONFIG_RESUME_FORCE). Warns when the thread counts differ from the
 * checkpoint's (the rest of the run then is not bit-identical to an uninterrupted one). */
int ckpt_load(const gorp_config *c, int force_config, trainer *t, cl_results *res, ckpt_pos *p);

/* gorp inspect FILE.h5 [--verify]: --verify checks every dataset's crc32, then reads a checkpoint
 * by the resume's own loader (on a trainer built from its stored config) and a model file by
 * modelfile_load, so that it accepts exactly what they accept. Serial, no MPI. */
int ckpt_inspect(const char *path, int verify);

#endif
