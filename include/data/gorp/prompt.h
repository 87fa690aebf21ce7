/* The exact CL_Benchmark prompt and the token sequences built from it for training and
 * evaluation:
 *   "Task:<TaskType>\nDataset:<dataset>\n<instruction>Option: <labels joined by ", ">
 * \n<sentence>\nAnswer:" COPA: "Task:COPA\nDataset:COPA\n<sentence>\nAnswer:" The prompt is kept in
 * three parts so that max_source can truncate the sentence alone and never the
 * task/instruction/option scaffold or the trailing "\nAnswer:". Not for: batching, padding or
 * shuffling (the caller lays out sequences), scoring (metrics.h). */
#ifndef GORP_PROMPT_H
#define GORP_PROMPT_H

#include "gorp/clbench.h"
#include "gorp/tokenizer.h"

/* prefix + sentence + suffix is the prompt; prefix is malloc'd, sentence is the caller's string,
 * suffix is static. */
typedef struct prompt_parts {
  char *prefix;
  const char *sentence;
  const char *suffix;
} prompt_parts;

int prompt_parts_make(prompt_parts *p, const cl_task *t, const char *sentence);
void prompt_parts_free(prompt_parts *p);

/* Training sequence:
 *   [BOS] + enc(prefix) + head(enc(sentence), max_source) + enc(suffix)
 *         + head(enc(" " + label), max_target) + [EOS]
 * tokens (*n) and targets (*n), both of capacity cap. Position i predicts token i+1: targets[i] is
 * tokens[i+1] when position i+1 holds an answer token or the EOS, else -1 (no loss), e.g.
 *   tokens  [BOS p  p  p  a1 a2 EOS]
 *   targets [-1  -1 -1 a1 a2 EOS -1]
 * max_source >= 0 and max_target >= 1. GORP_EINPUT naming the dataset when the sequence exceeds
 * cap. */
int prompt_encode_train(const tokenizer *tok, const cl_task *t, const cl_item *item, int max_source,
                        int max_target, int *tokens, int *targets, int *n, int cap);
/* Evaluation input (the model generates the answer after it):
 *   [BOS] + enc(prefix) + head(enc(sentence), max_source) + enc(suffix) */
int prompt_encode_eval(const tokenizer *tok, const cl_task *t, const char *sentence, int max_source,
                       int *tokens, int *n, int cap);

#endif
