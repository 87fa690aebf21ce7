/* The synthetic continual-learning suite (data.format = synthetic): 15 generated tasks that mirror
 * CL_Benchmark (dataset names with a "syn-" prefix, the real task types and label words, the exact
 * prompt scaffold with a dataset-specific instruction line, orders 1-6) on a small made-up
 * vocabulary, its word-level tokenizer.json, and the pretraining mix of `gorp pretrain`.
 * Every task is a cl_task, so prompt assembly, training, evaluation and metrics run unchanged.
 * Items are a pure function of (seed, dataset, split, n); the vocabulary, the rules and the
 * tokenizer do not depend on the seed. docs/SYNTHETIC.md states every rule and word list.
 * Not for: real data (clbench.h), prompt text (prompt.h), tokenisation (tokenizer.h), training. */
#ifndef GORP_SYNTH_H
#define GORP_SYNTH_H

#include "gorp/clbench.h"

#include <stdint.h>

enum { SYNTH_N_DATASETS = 15, SYNTH_N_ORDERS = 6 };

/* Changes whenever the generated items, the vocabulary or the pretraining mix change for a given
 * seed: a cached tokenizer or pretrained base made with another version is stale. */
enum { SYNTH_VERSION = 1 };

/* The 15 dataset names ("syn-dbpedia", ...), in the suite's table order. */
extern const char *const synth_datasets[SYNTH_N_DATASETS];

/* 1 when name is one of synth_datasets, else 0. */
int synth_is_dataset(const char *name);

/* Fills *t with synthetic task `dataset` (e.g. "syn-dbpedia"): task_type, dataset, instruction
 * (NULL for syn-COPA), labels, n_train training and n_test test items, all malloc'd as
 * clbench_load does (free with synth_free or clbench_free). Labels are balanced exactly: every
 * label occurs floor(n/L) or ceil(n/L) times in a split of n items, in a seeded order. The same
 * (seed, dataset, n_train, n_test) always gives the same items. GORP_EINPUT naming the dataset
 * when it is unknown, or when n_train or n_test is outside 1..10000000; *t is then left empty. */
int synth_load(cl_task *t, const char *dataset, uint64_t seed, int n_train, int n_test);
void synth_free(cl_task *t);

/* The tasks of order `name` ("order1" .. "order6", the benchmark's orders with syn- names):
 * *tasks points into a static table of *n names (nothing to free). GORP_EINPUT for another name.
 */
int synth_order(const char *name, const char *const **tasks, int *n);

/* Writes the suite's WordLevel tokenizer.json to path, atomically (path.tmp, fsync, rename,
 * fsync of the folder): ids 0-3 are the special tokens <unk> <s> </s> <pad> (tokenizer_open maps
 * them to unk, BOS, EOS, PAD), then every token of every prompt scaffold, instruction, label,
 * sentence template, made-up word and pretraining name, in byte order. Pre-tokenizer: Split on
 * the regex \w+|[^\w\s]|\n (matches kept, the rest, i.e. spaces, removed); no normalizer, no
 * decoder (decode joins tokens with one space). The file does not depend on any seed.
 * GORP_EIO when the file cannot be written. */
int synth_write_tokenizer(const char *path);
/* Number of ids in that tokenizer (for sizing a model before the file exists). */
int synth_vocab_size(void);

/* One example of the pretraining mix: the trainer encodes
 *   [BOS] + encode(prompt) + encode_cont(" " + answer) + [EOS]
 * with the loss on the answer tokens and EOS only (prompt.c's layout with the prompt given
 * whole). SYNTH_EX_LM (20%): prompt is "" and answer is the text of a synthetic sentence, so the
 * loss covers every token (language modelling). SYNTH_EX_OPTION (80%): prompt is a full benchmark-
 * scaffold prompt whose Option: line lists 3-12 shuffled concepts, each under one of its names;
 * the answer is the listed name of the concept present in the sentence. */
enum { SYNTH_EX_LM = 1, SYNTH_EX_OPTION = 2 };
typedef struct synth_example {
  char *prompt;
  char *answer;
  int kind; /* SYNTH_EX_* */
} synth_example;

/* Example number `index` of the mix for seed: a pure function of (seed, index), so a trainer can
 * draw example step * batch + b on the fly and a resume continues the same stream. */
int synth_pretrain_example(synth_example *e, uint64_t seed, uint64_t index);
void synth_example_free(synth_example *e);

/* Introspection, for tests and docs. The made-up words stand for concepts of four families. */
enum {
  SYNTH_FAM_TOPIC = 0,    /* 17 topic groups */
  SYNTH_FAM_POLARITY = 1, /* 5 polarity levels, 0 very negative .. 4 very positive */
  SYNTH_FAM_ENTITY = 2,   /* 4 entity classes */
  SYNTH_FAM_MARKER = 3,   /* syn-RTE's negation marker: concept 1 present, 0 absent */
  SYNTH_N_FAMILIES = 4
};
/* The concept a sentence word stands for: 1 with *family, *concept set, 0 for any other word. */
int synth_word_concept(const char *word, int *family, int *concept);
/* The concept a pretraining option name stands for: 1 with *family, *concept set, else 0. */
int synth_name_concept(const char *name, int *family, int *concept);
/* The decisive family of a dataset's rule, or -1 for an unknown dataset. */
int synth_task_family(const char *dataset);
/* The label the dataset's rule gives when its decisive family shows `concept`, or NULL when the
 * dataset never draws that concept (or the dataset or family is not its own). */
const char *synth_rule_label(const char *dataset, int family, int concept);
/* Applies the dataset's rule to a sentence as docs/SYNTHETIC.md states it (read the words of the
 * decisive family; syn-RTE: whether a marker word occurs) and sets *label to the label (a static
 * string). GORP_EINPUT when the sentence has no decisive word or words that disagree. */
int synth_apply_rule(const char *dataset, const char *sentence, const char **label);

#endif
