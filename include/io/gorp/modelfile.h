/* gorp's HDF5 model file: group /model holds one float32 dataset per tensor under its Hugging Face
 * name (/model/model.layers.0.mlp.gate_proj.weight, shape [rows, cols] or [n]), each with a
 * `crc32` attribute (crc.h), and the architecture as attributes of /model together with the HF
 * config.json text (`hf_config`). The root carries `gorp_format_version` and `gorp_file_kind`.
 * A checkpoint holds the same /model group next to its own groups, and a LoRA run's model.h5
 * its merged weights there with the adapters under /adapters (modelfile_save_merged_tp); loading
 * looks only inside /model (and, for a lean checkpoint, in the base model file its /base names),
 * so every command that takes a model accepts any of them.
 * Datasets are always the logical (unsharded) tensors. With a dist of more than one rank, saving
 * and loading are collective (h5io.h): each rank writes and reads its shard of every tensor, so a
 * file written under one TP/DP layout loads under any other.
 * Not for: checkpoints' other groups (ckpt), other dtypes in memory. */
#ifndef GORP_MODELFILE_H
#define GORP_MODELFILE_H

#include "gorp/h5io.h"
#include "gorp/model.h"

#include <hdf5.h>

struct dist;
struct lora;

/* The layout version of gorp's HDF5 files (root attribute gorp_format_version). */
enum { MODELFILE_FORMAT_VERSION = 1 };

/* Writes m to path atomically: path.tmp is written, closed, fsynced and renamed over path, then
 * the directory is fsynced. On failure path is left as it was and path.tmp is removed.
 * hf_config_json is stored as /model's hf_config; NULL stores one generated from m->cfg. */
int modelfile_save(const model *m, const char *path, const char *hf_config_json);
/* The same by every rank of d together, each writing its shard of m (NULL: this process alone,
 * holding the whole model). */
int modelfile_save_tp(const model *m, const char *path, const char *hf_config_json,
                      const struct dist *d);
/* The model file of a fine-tuning run (`gorp run`'s model.h5): /model holds m's weights with lo's
 * adapters merged, W + (alpha / r) * sum_p B_p A_p for every linear that carries adapters (the
 * model as it evaluates), and /adapters keeps the pairs themselves: /adapters/task_NN/<HF module
 * name>.lora_A (r, in) and .lora_B (out, r) as PEFT stores them, with the attributes r, alpha,
 * pairs, merged (1), method, targets and target_modules on /adapters and `tasks` (what the pair
 * trained on, pair_tasks[p]) on each pair's group. Loading reads /model only. lo NULL or without
 * pairs: modelfile_save_tp. Neither m nor lo changes: one shard of one weight is copied at a time.
 * Atomic and collective as modelfile_save_tp. */
int modelfile_save_merged_tp(const model *m, const struct lora *lo, const char *method,
                             const char *const *pair_tasks, const char *path,
                             const char *hf_config_json, const struct dist *d);
/* Writing a model file one tensor at a time (the importers: a 7B model is never whole in memory),
 * serial. m gives the architecture and end ids (its table from model_plan_tp is enough; nothing
 * need be allocated); open writes them to path.tmp, put adds one tensor of m's table, close ends:
 * with rc 0 it publishes path atomically as modelfile_save does, otherwise it removes path.tmp and
 * leaves path as it was, and returns rc. An open that fails has closed the writer. The importers
 * read each tensor into w->buf (room for the largest tensor as float32) and put it from there. */
typedef struct modelfile_counts {
  int n_tensors;
  size_t n_values, n_bf16; /* the tensors' values, and how many of them were written as bf16 */
} modelfile_counts;
typedef struct modelfile_writer {
  hid_t file, grp;  /* path.tmp and its /model */
  char *tmp;        /* path.tmp */
  const char *path; /* published by modelfile_writer_close */
  float *buf;       /* (the largest numel of m's table) one tensor on its way, caller-filled */
  modelfile_counts counts; /* what put wrote so far */
} modelfile_writer;
int modelfile_writer_open(modelfile_writer *w, const model *m, const char *path,
                          const char *hf_config);
/* Tensor t's values x: float32, or with bf16 set bfloat16 bits written as a bfloat16 dataset. */
int modelfile_writer_put(modelfile_writer *w, const param_tensor *t, const void *x, int bf16);
int modelfile_writer_close(modelfile_writer *w, int rc);

/* gorp inspect: one line on /adapters (pairs, method, r, alpha, targets) and what each pair
 * trained on; nothing when the file has no adapters. */
int modelfile_print_adapters(hid_t file, const char *path);
/* config.json for a model that came without one (random init, pretrain; stored as /model's
 * hf_config) and for gorp export-hf: LlamaForCausalLM with every key of model_config_keys, silu,
 * float32, and eos_token_id (an int, or a list of n_eos > 1) when n_eos > 0. cJSON_free it; NULL
 * when out of memory. */
char *modelfile_hf_config(const model_config *c, const int *eos, int n_eos);
/* Reads and checks the architecture stored in the attributes of path's /model. */
int modelfile_read_config(const char *path, model_config *cfg);
/* Creates m from path: the format version, then every tensor of the table with its exact shape and
 * crc32; datasets in /model that the table does not know are errors too. Every tensor is fp32 in
 * memory (a bfloat16 dataset widened exactly). On failure m is left freed (zeroed). */
int modelfile_load(model *m, const char *path);
/* The same for this rank's shard of the TP group of d (NULL: the whole model), by every rank of
 * d together: each reads its block of every tensor and checks the crc32 of the logical tensor
 * with its TP group. prep (NULL: none) chooses the tensors kept in bf16 before anything is
 * allocated (model_alloc_params); each tensor is read in the file's dtype and rounded or widened
 * to its own, one tensor at a time. */
int modelfile_load_tp(model *m, const char *path, const struct dist *d, const model_prep *prep);

/* Which of a model's tensors a file holds: a model file all; a lean checkpoint (docs/CHECKPOINT.md)
 * the trainable ones (model_set_trainable), the others read from the base model file that its
 * group /base names; reading a lean file as a model, the ones present in it. */
typedef enum modelfile_tensors {
  MODELFILE_ALL,
  MODELFILE_TRAINABLE,
  MODELFILE_PRESENT
} modelfile_tensors;

/* The building blocks that checkpoints share (ckpt.c), on an open file (collective over d); the
 * tensors' blocks are model_state.h's: */
/* Root attributes gorp_format_version and gorp_file_kind ("model", "checkpoint"). */
int modelfile_write_header(hid_t file, const char *kind, const char *path);
/* Checks the format version and that /model exists. */
int modelfile_check_header(hid_t file, const char *path);
/* Writes the /model group (architecture attributes, hf_config, the tensors of set with crc32). */
int modelfile_write_group(hid_t file, const model *m, modelfile_tensors set, const char *hf_config,
                          const struct dist *d, const char *path);
/* Creates m from the /model group, verifying shapes and checksums (a lean file's base first: the
 * tensors it lacks are read from there, and the base's checksum must be the one /base records);
 * sets m->from_file and m->file_checksum; prep as modelfile_load_tp; m is freed on failure by the
 * caller (modelfile_load does). */
int modelfile_read_group(hid_t file, model *m, const struct dist *d, const model_prep *prep,
                         const char *path);
/* Reads the tensors of set of m (already created with its layout) from /model, verified. */
int modelfile_read_tensors(hid_t file, model *m, modelfile_tensors set, const struct dist *d,
                           const char *path);

/* A lean file's reference to its base model file (group /base, string attributes path and
 * resolved, uint32 checksum): the weights it lacks are the base's. */
enum { MODELFILE_BASE_DEPTH = 8 }; /* lean files on lean bases, at most this deep */
typedef struct modelfile_base {
  char path[4096];     /* as the run named it (model.init) */
  char resolved[4096]; /* absolute, links resolved, when the file was written: the one read */
  uint32_t checksum;   /* the base's weights (model.file_checksum, modelfile_file_checksum) */
} modelfile_base;
int modelfile_write_base(hid_t file, const modelfile_base *b, const char *path);
/* *found = 0 when file has no /base (it holds every tensor). */
int modelfile_read_base(hid_t file, const char *path, modelfile_base *b, int *found);
/* The checksum of the weights that path holds (a lean file's own, its base's for the rest), from
 * the datasets' crc32 attributes alone, without reading their data (gorp inspect). Serial. */
int modelfile_file_checksum(const char *path, uint32_t *sum);

#endif
