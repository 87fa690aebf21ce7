/* The exact CL_Benchmark prompt and the token sequences built from it for training and
 * evaluation:
 *   "Task:<TaskType>\nDataset:<dataset>\n<instruction>Option: <labels joined by ", ">
 * \n<sentence>\nAnswer:" COPA: "Task:COPA\nDataset:COPA\n<sentence>\nAnswer:" The prompt is kept in
 * three parts so that max_source can truncate the sentence alone and never the
 * task/instruction/option scaffold or the trailing "\nAnswer:"; the parts are joined into one
 * string before encoding. Not for: batching, padding or
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

/* Training sequence (ids of the tokenizer's template, tok->prepend, then one encoding of the
 * whole text; S is the source):
 *   S = chat.before + prefix + cut(sentence, max_source) + suffix + chat.after
 *   tokens = prepend + head(enc(S + J + label), |common| + max_target) + E
 * where J is " " (no chat template) or "" (after the template's generation prompt), common is the
 * longest common start of enc(S) and enc(S + J + label) (the prompt's ids, normally all of
 * enc(S)), the answer is the up to max_target ids after it, and E is [EOS] without a chat
 * template, enc(chat.end) with one (the template closes the answer's turn, e.g. <|im_end|>).
 * cut(sentence, m): the sentence when it encodes alone to at most m ids, else the decoded text of
 * its first m ids. tokens (*n) and targets (*n), both of capacity cap. Position i predicts token
 * i+1: targets[i] is tokens[i+1] when position i+1 holds an answer token or E, else -1 (no loss):
 *   tokens  [BOS p  p  p  a1 a2 EOS]
 *   targets [-1  -1 -1 a1 a2 EOS -1]
 * label NULL: the evaluation input, prepend + enc(S) (targets unused, may be NULL).
 * max_source >= 0 and max_target >= 1. GORP_EINPUT with the size when the sequence exceeds cap;
 * nothing is written then. */
int prompt_parts_encode(const tokenizer *tok, const prompt_parts *p, const char *label,
                        int max_source, int max_target, int *tokens, int *targets, int *n, int cap);
/* prompt_parts_encode of an item's sentence and label in task t (naming the task on error). */
int prompt_encode_train(const tokenizer *tok, const cl_task *t, const cl_item *item, int max_source,
                        int max_target, int *tokens, int *targets, int *n, int cap);
/* prompt_parts_encode of sentence in task t with no label: the input the model answers. */
int prompt_encode_eval(const tokenizer *tok, const cl_task *t, const char *sentence, int max_source,
                       int *tokens, int *n, int cap);

#endif
