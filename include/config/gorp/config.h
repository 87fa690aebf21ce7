/* The run configuration: an INI file (read with inih) plus "section.key=value" overrides, turned
 * into one validated struct.
 *
 * One static schema table in config.c (section, key, type, field, default, limits, doc) drives
 * parsing, defaults, validation, the canonical text that checkpoints store and hash, and the
 * Markdown tables of docs/CONFIG.md; tests/unit/test_config.c checks that the docs and the table
 * agree. Every new key goes into that table and into docs/CONFIG.md.
 * Not for: reading data, model or checkpoint files (their modules take the resolved paths). */
#ifndef GORP_CONFIG_H
#define GORP_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "gorp/model.h"

typedef struct gorp_config {
  char *file; /* the config path as given (NULL for a config built from defaults only) */
  struct {
    char *out_dir;        /* run directory: results, checkpoints, predictions */
    char *name;           /* label in results.h5 and the tables; "" = the method */
    uint64_t seed;        /* key of every random choice */
    char *backend;        /* "cpu" or "cuda" */
    char *method;         /* seqft ... mtl (see docs/ALGORITHM.md) */
    int log_every;        /* progress line every N steps */
    int checkpoint_every; /* steps between checkpoints inside a task; 0 = task ends only */
    int checkpoint_keep;  /* checkpoints kept */
  } run;
  struct {
    char *init;             /* "random" or a resolved path to an HDF5 model file or checkpoint */
    model_config arch;      /* num_kv_heads and head_dim resolved; vocab_size 0 = the tokenizer's */
    char *dtype;            /* "fp32" or "bf16": the frozen weights' storage */
    char *trained_products; /* "fp32" or "bf16": how the trained matrices multiply */
    float init_std;
    float embed_init_std; /* resolved: model.init_std when the key is 0 */
  } model;
  struct {
    char *format;                        /* "clbench" or "synthetic" */
    int synthetic_train, synthetic_test; /* items per task of the synthetic suite */
    char *root;                          /* resolved path, or "none" */
    char *instructions;                  /* resolved path, or "none" */
    char **tasks; /* n_tasks dataset folder names, in training order, after data.order
                     was expanded and data.substitute applied */
    int n_tasks;
    char *order;       /* a task order named in data.orders, or "" */
    char *orders;      /* resolved path of the orders file, or "none" */
    char **substitute; /* n_substitute "old=new" replacements of dataset names */
    int n_substitute;
    char *unlabelled;    /* "score" or "drop": test items labelled "-" (no gold label) */
    char *tokenizer;     /* "byte" or a resolved path to a tokenizer.json */
    char *chat_template; /* "none" or a resolved path to a rendered chat template (.chat.json) */
    int max_source_length;
    int max_target_length;
    int max_train_per_task; /* 0 = all */
    int max_test_per_task;  /* 0 = all */
  } data;
  struct {
    int batch_size;
    int epochs;
    int max_steps;                                        /* per task; 0 = epochs decide */
    float lr, beta1, beta2, eps, weight_decay, grad_clip; /* grad_clip 0 = off */
    char **per_task; /* n_per_task "dataset:key=value" overrides of epochs, batch_size,
                        max_steps, lr for one task (see config_task_train) */
    int n_per_task;
    int recompute; /* 1: keep each layer's input only, recompute the layer in backward */
  } train;
  struct {
    int max_new_tokens;
    int batch_size; /* prompts decoded together (the predictions do not depend on it) */
    char **stop;    /* n_stop token texts that end an answer, besides EOS and the model's */
    int n_stop;
    int zero_shot; /* 0: row 0 of the accuracy matrix is not measured */
  } eval;
  struct {
    char **targets; /* n_targets of q,k,v,o,gate,up,down (or all) */
    int n_targets;
    int r;
    float alpha, dropout, lr;
    float olora_lambda1, olora_lambda2, nlora_lambda;
  } lora;
  struct {
    char **targets; /* n_targets: full-rank weights trained by galore/gorp */
    int n_targets;
    char *optimizer; /* "lowrank" or "adam" */
    int stream_grad; /* lowrank: gradients compressed layer by layer in backward */
    int rank, update_gap;
    float scale, lr;
  } full;
  struct {
    int tp, dp; /* tensor- and data-parallel group sizes: world = tp x dp */
  } parallel;
  struct {
    char *out; /* resolved path of the base model file gorp pretrain writes (and reuses) */
    int steps, batch_size, warmup;
    float lr, min_lr_ratio;
  } pretrain;
  struct {
    float energy;
    char *axis;         /* "paper" or "input" */
    char *basis_source; /* "moment" or "activation" */
    int project_update, project_lora, project_full;
    int activation_examples;
    char *svd; /* "exact" or "randomized" */
  } gorp;
} gorp_config;

/* The longest path a path key may hold after it is resolved against the config's folder: gorp
 * builds file names under it (run.out_dir/predictions/after_NN/DATASET.jsonl, checkpoints, .tmp
 * files) in buffers of the system's PATH_MAX (4096), so a longer one would be cut silently. */
enum { CONFIG_PATH_MAX = 3072 };

/* Loads path (INI), then applies overrides ("section.key=value", in order; a later one wins),
 * fills defaults, resolves relative paths (overrides and defaults included) against the folder
 * of path, derives model.num_kv_heads / model.head_dim when 0, and validates. On failure c is
 * left empty (config_free is harmless) and the message names the file, line and key. */
int config_load(gorp_config *c, const char *path, char *const *overrides, int n_overrides);
/* Defaults only, with derived values filled in; paths stay relative to the working directory and
 * the required keys (data.root, data.instructions, data.tasks) stay empty. */
int config_defaults(gorp_config *c);
/* Frees every string and list of c and zeroes it. */
void config_free(gorp_config *c);
/* Canonical text of every key with its resolved value ("[section]\nkey = value\n", sections
 * separated by a blank line, paths canonical as in config_scope_text), in table order: what
 * checkpoints store. *text is malloc'd. config.file is not part of it. */
int config_to_text(const gorp_config *c, char **text);
/* 64-bit FNV-1a of config_to_text (allocates nothing). */
uint64_t config_hash(const gorp_config *c);
/* The keys a canonical text or hash covers (docs/CONFIG.md "What the hashes cover"). */
typedef enum config_scope {
  CONFIG_ALL,     /* every key: what the ranks of one job compare at start-up (dist_init) */
  CONFIG_RUN,     /* the keys gorp run's results depend on: what a resume compares */
  CONFIG_PRETRAIN /* the keys gorp pretrain's base model depends on: its reuse key */
} config_scope;
/* config_to_text and config_hash of the keys in scope only (sections without one are left out).
 * Paths are canonical (absolute, links resolved) in every scope, so that one config named from
 * another folder, or through a link, has one text. */
int config_scope_text(const gorp_config *c, config_scope scope, char **text);
uint64_t config_scope_hash(const gorp_config *c, config_scope scope);

/* How a resume treats a change of key "section.key" since the checkpoint. */
typedef enum config_resume {
  CONFIG_RESUME_ANY,   /* outside the run hash: any value resumes */
  CONFIG_RESUME_FORCE, /* where an input lies, or the backend: resumes with --force-config */
  CONFIG_RESUME_NEVER  /* changes what the run computes (also an unknown name): refused */
} config_resume;
config_resume config_key_resume(const char *name);

/* A key whose value differs between two canonical texts. */
typedef struct config_change {
  char key[128];         /* "section.key" */
  const char *now, *was; /* its values in the two texts, not NUL-terminated; was NULL: absent */
  int now_len, was_len;
} config_change;
/* Calls fn (when not NULL) for each key line of text now whose key has another value, or none,
 * in text was (matched within the same section), in now's order; returns how many. A key that
 * was lacks while now holds its default is no change: was came from a gorp older than the key,
 * and every new key's default keeps the behaviour of before. */
int config_text_diff(const char *now, const char *was, void (*fn)(const config_change *, void *),
                     void *arg);

/* The value of key name ("model.init") in a canonical text (config_to_text, a checkpoint's
 * /config) into out[n]; 0 when the key is absent or its value does not fit. */
int config_text_get(const char *text, const char *name, char *out, size_t n);

/* The training settings of one task: [train] with the task's train.per_task entries applied
 * (entries were validated by config_load). */
typedef struct task_train {
  int epochs, batch_size, max_steps;
  float lr;
} task_train;
void config_task_train(const gorp_config *c, const char *dataset, task_train *t);

/* Writes the schema as Markdown: per section a "## [section]" heading, its one-line purpose and a
 * table "| key | type | default | meaning |" with one "| `section.key` | ..." row per key. */
int config_schema_markdown(FILE *f);
/* Writes which keys each hash covers, one "- **...**: `section.key`, ..." line per class (the
 * list lines of docs/CONFIG.md "What the hashes cover"). */
int config_scope_markdown(FILE *f);

#endif
