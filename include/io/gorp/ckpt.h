/* Checkpoints (docs/CHECKPOINT.md): one HDF5 file per checkpoint with the resolved config, the
 * model, the run's position and every entry of a state table (state.h) that the owners of the
 * state describe (the LoRA pairs, optimizer states, GORP's bases, the accuracy matrices: cl_ckpt.h
 * assembles them), each dataset with a crc32; saved atomically (tmp, fsync, rename, fsync of the
 * folder, then LATEST the same way), the last run.checkpoint_keep kept. Loading verifies version,
 * config and checksums and falls back to the previous good checkpoint when LATEST's is damaged.
 * A resumed run ends bit-identical to an uninterrupted one (on the same layout; to float
 * tolerance on another).
 * This module knows files, tensors and blocks, not training: which entries exist, their names,
 * shapes and blocks come from the table; the only things it reads before the table are the
 * position (ckpt_pos), from which the caller describes (and, loading, prepares) the rest.
 * With a dist of more than one rank, ckpt_save and ckpt_load are collective: every rank calls
 * them, writes or reads its blocks of the logical (unsharded) tensors through parallel HDF5
 * (h5io.h), and every rank returns the same code; so a checkpoint saved under one TP/DP layout
 * resumes under any other.
 * Lean: a model read from a file (model.init) and partly frozen is stored as its trainable
 * tensors and a reference to that file (/base), whose checksum a resume verifies.
 * Not for: results.h5 and model.h5 (cl_results.h, modelfile.h), what the entries mean. */
#ifndef GORP_CKPT_H
#define GORP_CKPT_H

#include "gorp/config.h"
#include "gorp/dist.h"
#include "gorp/model.h"
#include "gorp/state.h"

#include <hdf5.h>
#include <stdint.h>

enum { CKPT_EXIT_RESUBMIT = 75 }; /* EX_TEMPFAIL: checkpointed on a signal, resubmit the job */
/* The last checkpoint number (ckpt_NNNNNN.h5 grows past six digits; a save beyond is refused). */
#define CKPT_MAX_SEQUENCE 999999999999L

/* Where the run stands: the root attributes, read before anything else (they decide which
 * entries exist and how large they are). */
typedef struct ckpt_pos {
  int task;       /* task in progress (0-based) */
  int step;       /* its steps taken */
  int done;       /* 1: task `task` is trained, its bases built and its row evaluated */
  int lora_pairs; /* LoRA pairs that exist (the adapters' size) */
  int eval_task;  /* 0, or with done = 1: the evaluation row after task `task` was stopped in
                     column eval_task - 1 (the columns before it are in the results, its finished
                     answers in a partial prediction file, cl.h cl_eval_hook) */
  float *losses;  /* (step) the task's losses so far (loading: malloc'd by the describe step) */
} ckpt_pos;

/* Fills the empty table tab with the run's state at position p. Loading (load = 1), it first
 * readies the memory the entries point at for p (the trainer's pairs and optimizers, p->losses
 * malloc'd when p->step > 0); on a failure of the load ckpt frees p->losses. */
typedef int (*ckpt_describe_fn)(void *arg, int load, ckpt_pos *p, state_table *tab);

/* What a checkpoint holds: the model (its /model group, a model file's: modelfile.h) and the
 * entries describe gives. */
typedef struct ckpt_state {
  model *m;
  ckpt_describe_fn describe;
  void *arg;
} ckpt_state;

/* Takes the exclusive lock of run.out_dir for the rest of this process (flock on
 * <out_dir>/gorp.lock, which names the holder: pid, host, start time). World rank 0 takes it; every
 * rank returns the same code: GORP_EIO, naming the holder, when another run holds it. */
int ckpt_lock(const gorp_config *c, const dist *d);

/* Saves s at position p into <out_dir>/checkpoints/ and updates LATEST (every rank of d). */
int ckpt_save(const gorp_config *c, const dist *d, const ckpt_state *s, const ckpt_pos *p);

/* 1 when <out_dir>/checkpoints holds a checkpoint (the run should resume). */
int ckpt_exists(const gorp_config *c);

/* Restores s and p from the newest good checkpoint, every rank of d its shard. Only the keys of
 * the run hash are compared (config.h CONFIG_RUN); force_config accepts a change of those that
 * name where an input lies or the backend (CONFIG_RESUME_FORCE). Warns when the thread counts
 * differ from the checkpoint's (the rest of the run then is not bit-identical to an
 * uninterrupted one). */
int ckpt_load(const gorp_config *c, int force_config, const dist *d, const ckpt_state *s,
              ckpt_pos *p);
/* Reads checkpoint path into s and p by the resume's own code, without comparing a config (s was
 * built from the one stored in it): gorp inspect --verify. Serial. */
int ckpt_load_file(const char *path, const ckpt_state *s, ckpt_pos *p);

/* gorp inspect's reading (cmd_inspect.c prints). Serial, no MPI. */
/* Opens path (a model file or checkpoint), checks its header: *kind (malloc'd) "model" or
 * "checkpoint", its architecture in *mc. */
int ckpt_inspect_open(const char *path, hid_t *file, char **kind, model_config *mc);
/* A checkpoint's stored /config text (malloc'd); a missing one is damage. */
int ckpt_config_text(hid_t file, const char *path, char **text);

/* A checkpoint's header as far as it can be read (missing parts stay 0 / NULL). */
typedef struct ckpt_header {
  char *method, *config_text; /* malloc'd */
  int64_t task, step, task_done, lora_pairs, eval_task;
  uint64_t hash, run_hash;
  int64_t threads[2]; /* OpenMP, OpenBLAS; 0 when not recorded */
} ckpt_header;
void ckpt_read_header(hid_t file, const char *path, ckpt_header *h);
void ckpt_header_free(ckpt_header *h);

/* One GORP basis as stored: columns in use, axis length (-1: no dataset), each task's end. */
typedef struct ckpt_basis {
  char name[256];
  long long columns, len;
  int n_ends;
  long long ends[99];
} ckpt_basis;
/* The bases under /gorp (*bases malloc'd, *n of them; none: NULL, 0). */
int ckpt_read_bases(hid_t file, ckpt_basis **bases, int *n);
/* The 2-D dataset `name` (a checkpoint's results/acc_matrix, results.h5's acc_matrix) (rows,
 * cols) malloc'd into *acc, or NULL when absent or unreadable. */
void ckpt_read_matrix(hid_t file, const char *name, const char *path, double **acc, int *rows,
                      int *cols);

/* Every dataset of the file counted; with verify read back and checked against its crc32
 * (each damaged one named on stderr). */
typedef struct ckpt_datasets {
  int n, verified, bad;
  size_t values;
} ckpt_datasets;
int ckpt_count_datasets(hid_t file, const char *path, int verify, ckpt_datasets *x);

#endif
