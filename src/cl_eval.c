/* Evaluation half of the runner (cl.h): greedy decoding of each test prompt with the KV cache,
 * normalised exact match and the in-list rate, and the per-item prediction file. */
#include "gorp/cl.h"

#include "gorp/err.h"
#include "gorp/metrics.h"
#include "gorp/prompt.h"
#include "gorp/rng.h"
#include "gorp/utf8.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A model may generate any byte sequence; the prediction files are JSON, so each invalid byte
 * becomes U+FFFD, as Hugging Face's decode(errors="replace") does. In place when valid. */
static int utf8_repair(char **text) {
  const unsigned char *s = (const unsigned char *)*text;
  size_t len = strlen(*text), bad = 0;
  for (size_t i = 0; i < len;) {
    size_t n = utf8_seq_len(s + i, len - i);
    bad += !n;
    i += n ? n : 1;
  }
  if (!bad) return GORP_OK;
  char *out;
  GORP_ALLOC(out, len + 2 * bad + 1, "prediction text");
  size_t o = 0;
  for (size_t i = 0; i < len;) {
    size_t n = utf8_seq_len(s + i, len - i);
    if (n) {
      memcpy(out + o, s + i, n);
      o += n;
      i += n;
    } else {
      memcpy(out + o, "\xEF\xBF\xBD", 3);
      o += 3;
      i++;
    }
  }
  free(*text);
  *text = out;
  return GORP_OK;
}

/* One JSON line per item; cJSON does the string escaping. */
static int write_prediction(FILE *f, const char *path, int id, const char *pred, const char *label,
                            int correct, int in_list) {
  cJSON *o = cJSON_CreateObject();
  if (!o) GORP_ERR(GORP_EMEM, "out of memory writing %s", path);
  cJSON_AddNumberToObject(o, "id", id);
  cJSON_AddStringToObject(o, "prediction", pred);
  cJSON_AddStringToObject(o, "label", label);
  cJSON_AddBoolToObject(o, "correct", correct);
  cJSON_AddBoolToObject(o, "in_list", in_list);
  char *line = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  if (!line) GORP_ERR(GORP_EMEM, "out of memory writing %s", path);
  int bad = fprintf(f, "%s\n", line) < 0;
  free(line);
  if (bad) GORP_ERR(GORP_EIO, "%s: write failed: %s", path, strerror(errno));
  return GORP_OK;
}

int cl_evaluate(model *m, const tokenizer *tok, const cl_task *t, const gorp_config *c,
                int task_index, const char *pred_path, cl_scores *s) {
  memset(s, 0, sizeof(*s));
  int n = t->n_test;
  if (c->data.max_test_per_task > 0 && c->data.max_test_per_task < n) n = c->data.max_test_per_task;
  const int cap = m->cfg.max_seq, max_new = c->eval.max_new_tokens;
  int *prompt, *out, *order;
  GORP_ALLOC(order, t->n_test, "test order");
  /* A capped test set is a seeded sample, the same one after every task. */
  if (n < t->n_test)
    rng_permutation(order, t->n_test, c->run.seed, 0xE7A1ULL + (uint64_t)task_index);
  else
    for (int i = 0; i < n; i++) order[i] = i;
  GORP_ALLOC(prompt, cap, "evaluation prompt");
  GORP_ALLOC(out, max_new, "generated tokens");
  FILE *f = NULL;
  if (pred_path && !(f = fopen(pred_path, "w")))
    GORP_ERR(GORP_EIO, "%s: cannot create: %s", pred_path, strerror(errno));
  for (int k = 0; k < n; k++) {
    const int i = order[k];
    const cl_item *item = &t->test[i];
    int len = 0, n_out = 0;
    GORP_CALL(prompt_encode_eval(tok, t, item->sentence, c->data.max_source_length, prompt, &len,
                                 cap - max_new));
    GORP_CALL(model_generate(m, prompt, len, max_new, tok->eos_id, out, &n_out));
    char *pred;
    GORP_CALL(tokenizer_decode(tok, out, n_out, &pred));
    GORP_CALL(utf8_repair(&pred));
    const int correct =
        strcmp(item->label, CL_LABEL_NONE) && metrics_exact_match(pred, item->label);
    const int in_list = metrics_in_list(pred, t->labels, t->n_labels);
    s->correct += correct;
    s->in_list += in_list;
    s->n++;
    if (f) GORP_CALL(write_prediction(f, pred_path, i, pred, item->label, correct, in_list));
    free(pred);
  }
  if (f && fclose(f)) GORP_ERR(GORP_EIO, "%s: close failed: %s", pred_path, strerror(errno));
  s->accuracy = s->n ? 100.0 * s->correct / s->n : 0.0;
  s->in_list_rate = s->n ? 100.0 * s->in_list / s->n : 0.0;
  free(order);
  free(prompt);
  free(out);
  return GORP_OK;
}
