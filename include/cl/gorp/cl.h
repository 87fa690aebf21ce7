/* The continual-learning runner: trains a model on the configured tasks one after another and
 * evaluates each with greedy decoding and normalised exact match.
 * Not for: the optimizers' maths (optim.h), file formats (modelfile.h), prompt layout (prompt.h).
 */
#ifndef GORP_CL_H
#define GORP_CL_H

#include "gorp/clbench.h"
#include "gorp/config.h"
#include "gorp/model.h"
#include "gorp/trainer.h"
#include "gorp/tokenizer.h"

/* The run's tokenizer: data.tokenizer with data.chat_template attached, or with data.format =
 * synthetic the suite's own, written by rank 0 to dir/synthetic-tokenizer.json. */
int cl_open_tokenizer(tokenizer *tok, const gorp_config *c, const dist *d, const char *dir);
/* Loads (or generates) every task of the order before any training, so that a missing dataset
 * stops the run at start-up; report: print each task's sizes (gorp run) or not (gorp plan).
 * *tasks (n_tasks) is freed with clbench_free each. */
int cl_load_tasks(const gorp_config *c, int report, cl_task **tasks);

/* A task's training split encoded once: examples laid end to end. */
typedef struct cl_encoded {
  int n;        /* examples */
  int *offset;  /* (n) start of example i in tokens/targets */
  int *item;    /* (n) index of example i in the task's train.json (keys its dropout masks) */
  int *length;  /* (n) */
  int *tokens;  /* (sum of lengths) */
  int *targets; /* (sum of lengths), -1 = no loss */
  int max_len;
} cl_encoded;

/* Encodes up to max_items examples of t's training split (all when 0), chosen by a seeded
 * shuffle so a cap samples every class. cap_len is the model's max sequence length. */
int cl_encode_train(cl_encoded *e, const tokenizer *tok, const cl_task *t, const gorp_config *c,
                    int task_index, int cap_len);
void cl_encoded_free(cl_encoded *e);
/* Appends src's examples to dst (mtl's union); their item indices are offset by item_base so
 * that examples of different tasks key different dropout masks. */
int cl_encoded_append(cl_encoded *dst, const cl_encoded *src, int item_base);

struct cl_log;
/* Trains tr's model on the encoded examples for the task's epochs/max_steps/batch size (tt)
 * (batches padded with pad_id), printing a progress line every run.log_every steps and writing a
 * metrics line every step. losses receives one value per step (capacity *n_steps on entry; the
 * steps taken on return). */
typedef struct cl_hook {
  /* called after every step but the task's last, with the losses so far; a non-zero return ends
   * the task there and is returned (checkpoint-and-stop) */
  int (*after_step)(void *ctx, int step, const float *losses);
  void *ctx;
  struct cl_log *log; /* metrics.jsonl (cl_log.h), or NULL */
  double elapsed0;    /* seconds the task's earlier steps took (a resumed task), for the log */
} cl_hook;
/* start_step > 0 resumes a task: losses[0..start_step) are the earlier steps' and the data cursor
 * continues where those steps left it. hook may be NULL. *elapsed: seconds from the task's first
 * step to its last one taken (hook's elapsed0 included). */
int cl_train_task(trainer *tr, const cl_encoded *e, int pad_id, const gorp_config *c,
                  const task_train *tt, int task_index, const char *task_name, int start_step,
                  float *losses, int *n_steps, const cl_hook *hook, double *elapsed);
/* Feeds the layer inputs of the first gorp.activation_examples encoded examples to the trainer
 * (activation bases), in batches of train.batch_size. */
int cl_observe_task(trainer *tr, const cl_encoded *e, int pad_id, const gorp_config *c);
/* The most optimizer steps one task may take (docs/CONFIG.md, train.epochs): its loss curve is
 * kept in memory and in checkpoints. */
enum { CL_MAX_STEPS = 100000000 };

/* *steps = the number of steps cl_train_task will take for n examples with the task's settings;
 * GORP_EINPUT naming the task when there are no examples or more than CL_MAX_STEPS steps. */
int cl_steps_for(const task_train *tt, int n_examples, const char *task, int *steps);

typedef struct cl_scores {
  int n;               /* test items scored */
  int correct;         /* exact matches */
  int in_list;         /* predictions that are one of the task's options */
  double accuracy;     /* percent */
  double in_list_rate; /* percent */
} cl_scores;

/* The most token texts eval.stop may list. */
enum { CL_MAX_STOP_TEXTS = 16 };
/* The stop set of the run's evaluation (docs/RESULTS.md): the tokenizer's EOS (what training
 * appends after every answer), m's end ids (its model file's eos_token_id) and the ids of the
 * eval.stop texts, each of which must encode to exactly one id of tok (GORP_EINPUT naming the key,
 * the text and the ids it gave). stop has room for 1 + MODEL_MAX_EOS + CL_MAX_STOP_TEXTS ids. */
int cl_stop_ids(const model *m, const tokenizer *tok, const gorp_config *c, int *stop, int *n_stop);

/* The text of a generated answer (ids, n), as evaluation scores it: an id past tok's vocabulary
 * (a model vocabulary padded past the tokenizer's) ends it, as a stop id does; the rest is decoded
 * without the special ids (tokenizer_decode) and each invalid UTF-8 byte becomes U+FFFD, as
 * Hugging Face's decode(errors="replace") does. *text is malloc'd. */
int cl_decode_answer(const tokenizer *tok, const int *ids, int n, char **text);

/* What lets a signal interrupt an evaluation (cmd_run.c). After each batch every rank calls
 * poll (collective: all ranks call it equally often and get the same *stop). When it sets *stop
 * and prompts remain, the answers decoded so far are published, as prediction lines in any
 * order, to partial_path (tmp + rename) and cl_evaluate returns CKPT_EXIT_RESUBMIT. With resume
 * set, the answers in partial_path are taken first and only the other prompts decoded, in the
 * batches of an uninterrupted evaluation (on the same rank layout). A completed evaluation
 * removes partial_path. */
typedef struct cl_eval_hook {
  int (*poll)(void *ctx, int *stop);
  void *ctx;
  const char *partial_path;
  int resume;
} cl_eval_hook;

/* Greedy decoding on up to data.max_test_per_task test items of t, shared round-robin by the
 * data-parallel ranks (d may be NULL: one rank), each prompt stopping after any of the n_stop ids
 * of stop (cl_stop_ids). Each rank decodes its items eval.batch_size at a time, longest prompt
 * first (model_generate); the predictions do not depend on the batch size. Rank 0 prints a
 * progress line at most every few seconds and writes one JSON line per item, in item order (id,
 * prediction, label, correct, in_list) to pred_path when it is not NULL; every rank gets the
 * scores. hook may be NULL (nothing interrupts it). */
int cl_evaluate(model *m, const tokenizer *tok, const cl_task *t, const gorp_config *c,
                const dist *d, int task_index, const int *stop, int n_stop, const char *pred_path,
                const cl_eval_hook *hook, cl_scores *s);

#endif
