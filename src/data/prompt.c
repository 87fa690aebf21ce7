/* Benchmark prompt assembly and training/evaluation sequences (see prompt.h).
 *
 * The layout follows upstream O-LoRA/GORP (uie_dataset_lora.py with --add_task_name and
 * --add_dataset_name): "Task:" + type + "\nDataset:" + name + "\n" + instruction + "Option: " +
 * ", ".join(labels) + " \n" + sentence + "\nAnswer:", and for COPA only "{0}\nAnswer:" after the
 * dataset line. The answer is encoded as " " + label in one piece because a BPE tokenizer merges
 * the space into the word.
 * Each sequence is counted before it is written, so a sequence longer than the caller's buffer is
 * reported with its dataset and size instead of failing half-written. */
#include "gorp/prompt.h"

#include "gorp/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char prompt_suffix[] = "\nAnswer:";

int prompt_parts_make(prompt_parts *p, const cl_task *t, const char *sentence) {
  *p = (prompt_parts){0};
  int copa = !strcmp(t->task_type, "COPA");
  if (!copa && !t->instruction)
    GORP_ERR(GORP_EINPUT, "task %s/%s has no instruction; only COPA prompts are built without one",
             t->task_type, t->dataset);
  size_t len = strlen("Task:\nDataset:\n") + strlen(t->task_type) + strlen(t->dataset) + 1;
  if (!copa) {
    len += strlen(t->instruction) + strlen("Option: ") + strlen(" \n");
    for (int i = 0; i < t->n_labels; i++) len += strlen(", ") + strlen(t->labels[i]);
  }
  char *w;
  GORP_ALLOC(w, len, "prompt prefix");
  p->prefix = w;
  w += sprintf(w, "Task:%s\nDataset:%s\n", t->task_type, t->dataset);
  if (!copa) {
    w += sprintf(w, "%sOption: ", t->instruction);
    for (int i = 0; i < t->n_labels; i++) w += sprintf(w, "%s%s", i ? ", " : "", t->labels[i]);
    strcpy(w, " \n");
  }
  p->sentence = sentence;
  p->suffix = prompt_suffix;
  return GORP_OK;
}

void prompt_parts_free(prompt_parts *p) {
  free(p->prefix);
  *p = (prompt_parts){0};
}

/* Appends one special id; with tokens NULL only counts (as tokenizer_encode does). */
static void put(int *tokens, int *n, int id) {
  if (tokens) tokens[*n] = id;
  (*n)++;
}

/* Appends [BOS] + prefix + the first max_source sentence tokens + suffix. The parts after the
 * prefix are encoded as continuations, so that the ids equal the encoding of the whole prompt
 * string (LLaMA's SentencePiece files would otherwise give every part its own leading "▁"). */
static int encode_prompt(const tokenizer *tok, const prompt_parts *p, int max_source, int *tokens,
                         int *n, int cap) {
  put(tokens, n, tok->bos_id);
  GORP_CALL(tokenizer_encode(tok, p->prefix, tokens, n, cap));
  GORP_CALL(tokenizer_encode_cont(tok, p->sentence, max_source, tokens, n, cap));
  GORP_CALL(tokenizer_encode_cont(tok, p->suffix, -1, tokens, n, cap));
  return GORP_OK;
}

/* Appends the prompt, the first max_target tokens of answer and EOS; fills targets when given. */
static int encode_train(const tokenizer *tok, const prompt_parts *p, const char *answer,
                        int max_source, int max_target, int *tokens, int *targets, int *n,
                        int cap) {
  GORP_CALL(encode_prompt(tok, p, max_source, tokens, n, cap));
  int answer_start = *n;
  GORP_CALL(tokenizer_encode_cont(tok, answer, max_target, tokens, n, cap));
  put(tokens, n, tok->eos_id);
  if (targets)
    for (int i = 0; i < *n; i++)
      targets[i] = (i + 1 >= answer_start && i + 1 < *n) ? tokens[i + 1] : -1;
  return GORP_OK;
}

static int check_fits(const cl_task *t, const char *what, int need, int cap, int max_source) {
  if (need > cap)
    GORP_ERR(GORP_EINPUT,
             "task %s/%s: the %s sequence needs %d tokens but the buffer holds %d (the sentence is "
             "already cut to %d tokens; the rest is the prompt scaffold and answer)",
             t->task_type, t->dataset, what, need, cap, max_source);
  return GORP_OK;
}

static int check_limits(int max_source, int max_target) {
  if (max_source < 0) GORP_ERR(GORP_EINPUT, "max_source must be >= 0, got %d", max_source);
  if (max_target < 1) GORP_ERR(GORP_EINPUT, "max_target must be >= 1, got %d", max_target);
  return GORP_OK;
}

static int answer_text(const char *label, char **out) {
  GORP_ALLOC(*out, strlen(label) + 2, "answer text");
  (*out)[0] = ' ';
  strcpy(*out + 1, label);
  return GORP_OK;
}

/* Counts, checks against cap, then writes: nothing is written when the sequence does not fit. */
static int train_sequence(const tokenizer *tok, const cl_task *t, const prompt_parts *p,
                          const char *answer, int max_source, int max_target, int *tokens,
                          int *targets, int *n, int cap) {
  int need = 0;
  GORP_CALL(encode_train(tok, p, answer, max_source, max_target, NULL, NULL, &need, 0));
  GORP_CALL(check_fits(t, "training", need, cap, max_source));
  *n = 0;
  GORP_CALL(encode_train(tok, p, answer, max_source, max_target, tokens, targets, n, cap));
  return GORP_OK;
}

int prompt_encode_train(const tokenizer *tok, const cl_task *t, const cl_item *item, int max_source,
                        int max_target, int *tokens, int *targets, int *n, int cap) {
  prompt_parts p;
  char *answer;
  GORP_CALL(check_limits(max_source, max_target));
  GORP_CALL(prompt_parts_make(&p, t, item->sentence));
  int ierr = answer_text(item->label, &answer);
  if (!ierr) {
    ierr = train_sequence(tok, t, &p, answer, max_source, max_target, tokens, targets, n, cap);
    free(answer);
  }
  prompt_parts_free(&p);
  return ierr;
}

static int eval_sequence(const tokenizer *tok, const cl_task *t, const prompt_parts *p,
                         int max_source, int *tokens, int *n, int cap) {
  int need = 0;
  GORP_CALL(encode_prompt(tok, p, max_source, NULL, &need, 0));
  GORP_CALL(check_fits(t, "evaluation", need, cap, max_source));
  *n = 0;
  GORP_CALL(encode_prompt(tok, p, max_source, tokens, n, cap));
  return GORP_OK;
}

int prompt_encode_eval(const tokenizer *tok, const cl_task *t, const char *sentence, int max_source,
                       int *tokens, int *n, int cap) {
  prompt_parts p;
  if (max_source < 0) GORP_ERR(GORP_EINPUT, "max_source must be >= 0, got %d", max_source);
  GORP_CALL(prompt_parts_make(&p, t, sentence));
  int ierr = eval_sequence(tok, t, &p, max_source, tokens, n, cap);
  prompt_parts_free(&p);
  return ierr;
}
