/* Benchmark prompt assembly and training/evaluation sequences (see prompt.h).
 *
 * The layout follows upstream O-LoRA/GORP (uie_dataset_lora.py with --add_task_name and
 * --add_dataset_name): "Task:" + type + "\nDataset:" + name + "\n" + instruction + "Option: " +
 * ", ".join(labels) + " \n" + sentence + "\nAnswer:", and for COPA only "{0}\nAnswer:" after the
 * dataset line. The source (the prompt, inside the chat template when the tokenizer has one) is
 * encoded as one string, and so is source + answer, so that the ids are those of the whole text as
 * a Hugging Face pipeline encodes it (a BPE merge never stops at a part's edge: SmolLM2's " \n"
 * is two tokens inside the prompt, one when the prefix is encoded alone). The answer is " " +
 * label without a chat template (a BPE tokenizer merges the space into the word, as a model
 * continues "Answer:"), the label itself after a template's generation prompt.
 * Each sequence is laid out in full before it is written, so a sequence longer than the caller's
 * buffer is reported with its size instead of failing half-written. */
#include "gorp/prompt.h"

#include "gorp/err.h"
#include "gorp/utf8.h"

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

/* The ids of all of text in a malloc'd array (*ids, *n). */
static int encode_alloc(const tokenizer *tok, const char *text, int **ids, int *n) {
  int count = 0;
  GORP_CALL(tokenizer_encode(tok, text, NULL, &count, 0));
  GORP_ALLOC(*ids, (size_t)count + 1, "prompt ids");
  *n = 0;
  int ierr = tokenizer_encode(tok, text, *ids, n, count);
  if (ierr) free(*ids);
  return ierr;
}

/* The sentence as the prompt holds it: itself when it encodes (alone) to at most max_source
 * tokens, else the text of its first max_source tokens (decoded, as upstream cuts an over-long
 * input), less a trailing incomplete UTF-8 sequence where the cut split a character. malloc'd. */
static int cut_sentence(const tokenizer *tok, const char *sentence, int max_source, char **out) {
  int *ids, n;
  GORP_CALL(encode_alloc(tok, sentence, &ids, &n));
  int ierr = n <= max_source ? GORP_OK : tokenizer_decode(tok, ids, max_source, out);
  free(ids);
  GORP_CALL(ierr);
  if (n <= max_source) {
    *out = strdup(sentence);
    if (!*out) GORP_ERR(GORP_EMEM, "out of memory copying a sentence");
    return GORP_OK;
  }
  (*out)[utf8_first_invalid((const unsigned char *)*out, strlen(*out))] = '\0';
  return GORP_OK;
}

/* Joins NULL-terminated strings into one malloc'd string. */
static int join(char **out, const char *const *parts) {
  size_t len = 1;
  for (int i = 0; parts[i]; i++) len += strlen(parts[i]);
  GORP_ALLOC(*out, len, "prompt text");
  char *w = *out;
  for (int i = 0; parts[i]; i++) w = stpcpy(w, parts[i]);
  return GORP_OK;
}

static int check_fits(const char *what, int need, int cap, int max_source) {
  if (need > cap)
    GORP_ERR(GORP_EINPUT,
             "the %s sequence needs %d tokens but the buffer holds %d (the sentence is already cut "
             "to %d tokens; the rest is the prompt scaffold and answer)",
             what, need, cap, max_source);
  return GORP_OK;
}

/* Lays out the sequence (see prompt.h) from the encodings of the source (src, n_src) and, for
 * training, of source + join + label (full, n_full). */
static int lay_out(const tokenizer *tok, const int *src, int n_src, const int *full, int n_full,
                   const int *end, int n_end, int max_source, int max_target, int *tokens,
                   int *targets, int *n, int cap) {
  const int P = tok->n_prepend;
  if (!full) {
    GORP_CALL(check_fits("evaluation", P + n_src, cap, max_source));
    memcpy(tokens, tok->prepend, (size_t)P * sizeof(int));
    memcpy(tokens + P, src, (size_t)n_src * sizeof(int));
    *n = P + n_src;
    return GORP_OK;
  }
  /* the answer starts where the training string's ids leave the prompt's: a merge across the
   * join (none on the benchmark's tokenizers) moves the loss onto the merged token */
  int common = 0;
  while (common < n_src && common < n_full && src[common] == full[common]) common++;
  const int n_answer = n_full - common < max_target ? n_full - common : max_target;
  const int need = P + common + n_answer + n_end;
  GORP_CALL(check_fits("training", need, cap, max_source));
  memcpy(tokens, tok->prepend, (size_t)P * sizeof(int));
  memcpy(tokens + P, full, (size_t)(common + n_answer) * sizeof(int));
  memcpy(tokens + P + common + n_answer, end, (size_t)n_end * sizeof(int));
  *n = need;
  const int answer_start = P + common;
  for (int i = 0; i < need; i++)
    targets[i] = (i + 1 >= answer_start && i + 1 < need) ? tokens[i + 1] : -1;
  return GORP_OK;
}

int prompt_parts_encode(const tokenizer *tok, const prompt_parts *p, const char *label,
                        int max_source, int max_target, int *tokens, int *targets, int *n,
                        int cap) {
  if (max_source < 0) GORP_ERR(GORP_EINPUT, "max_source must be >= 0, got %d", max_source);
  if (label && max_target < 1) GORP_ERR(GORP_EINPUT, "max_target must be >= 1, got %d", max_target);
  const tokenizer_chat *chat = tok->chat;
  char *sentence = NULL, *source = NULL, *full_text = NULL;
  int *src = NULL, *full = NULL, *end = NULL, n_src = 0, n_full = 0, n_end = 0;
  int ierr = cut_sentence(tok, p->sentence, max_source, &sentence);
  if (!ierr) {
    const char *const parts[] = {chat ? chat->before : "", p->prefix, sentence, p->suffix,
                                 chat ? chat->after : "",  NULL};
    ierr = join(&source, parts);
  }
  if (!ierr) ierr = encode_alloc(tok, source, &src, &n_src);
  if (!ierr && label) {
    /* an answer follows "Answer:" after a space; a chat template's generation prompt ends in its
     * own separator (a newline), after which the answer starts */
    const char *const parts[] = {source, chat ? "" : " ", label, NULL};
    ierr = join(&full_text, parts);
    if (!ierr) ierr = encode_alloc(tok, full_text, &full, &n_full);
    if (!ierr && chat) ierr = encode_alloc(tok, chat->end, &end, &n_end);
  }
  if (!ierr)
    ierr = lay_out(tok, src, n_src, full, n_full, chat ? end : &tok->eos_id,
                   chat ? n_end : (label != NULL), max_source, max_target, tokens, targets, n, cap);
  free(sentence);
  free(source);
  free(full_text);
  free(src);
  free(full);
  free(end);
  return ierr;
}

int prompt_encode_train(const tokenizer *tok, const cl_task *t, const cl_item *item, int max_source,
                        int max_target, int *tokens, int *targets, int *n, int cap) {
  prompt_parts p;
  GORP_CALL(prompt_parts_make(&p, t, item->sentence));
  int ierr =
      prompt_parts_encode(tok, &p, item->label, max_source, max_target, tokens, targets, n, cap);
  prompt_parts_free(&p);
  if (ierr)
    GORP_ERR(ierr, "task %s/%s: could not encode a training item", t->task_type, t->dataset);
  return GORP_OK;
}

int prompt_encode_eval(const tokenizer *tok, const cl_task *t, const char *sentence, int max_source,
                       int *tokens, int *n, int cap) {
  prompt_parts p;
  GORP_CALL(prompt_parts_make(&p, t, sentence));
  int ierr = prompt_parts_encode(tok, &p, NULL, max_source, 1, tokens, NULL, n, cap);
  prompt_parts_free(&p);
  if (ierr) GORP_ERR(ierr, "task %s/%s: could not encode a test item", t->task_type, t->dataset);
  return GORP_OK;
}
