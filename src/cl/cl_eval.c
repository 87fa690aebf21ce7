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

/* One JSON line per item (cJSON does the string escaping), appended to the growing buffer. */
static int append_prediction(char **buf, size_t *len, size_t *cap, int id, const char *pred,
                             const char *label, int correct, int in_list) {
  cJSON *o = cJSON_CreateObject();
  if (!o) GORP_ERR(GORP_EMEM, "out of memory building a prediction line");
  cJSON_AddNumberToObject(o, "id", id);
  cJSON_AddStringToObject(o, "prediction", pred);
  cJSON_AddStringToObject(o, "label", label);
  cJSON_AddBoolToObject(o, "correct", correct);
  cJSON_AddBoolToObject(o, "in_list", in_list);
  char *line = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  if (!line) GORP_ERR(GORP_EMEM, "out of memory building a prediction line");
  const size_t n = strlen(line);
  if (*len + n + 2 > *cap) {
    size_t grown_cap = 2 * (*len + n + 2);
    char *g = realloc(*buf, grown_cap);
    if (!g) {
      free(line);
      GORP_ERR(GORP_EMEM, "out of memory building the prediction file");
    }
    *buf = g;
    *cap = grown_cap;
  }
  memcpy(*buf + *len, line, n);
  (*buf)[*len + n] = '\n';
  *len += n + 1;
  free(line);
  return GORP_OK;
}

/* Rank 0 writes the ranks' lines in item order: rank r evaluated items k = r, r + p, ... */
static int write_predictions(const char *path, const char *all, const int *lens, int p, int n) {
  FILE *f = fopen(path, "w");
  if (!f) GORP_ERR(GORP_EIO, "%s: cannot create: %s", path, strerror(errno));
  const char **cursor = malloc((size_t)p * sizeof(char *));
  if (!cursor) GORP_ERR(GORP_EMEM, "out of memory writing %s", path);
  for (int r = 0, off = 0; r < p; off += lens[r++]) cursor[r] = all + off;
  int bad = 0;
  for (int k = 0; k < n && !bad; k++) {
    const char *line = cursor[k % p], *end = strchr(line, '\n');
    bad = fwrite(line, 1, (size_t)(end - line + 1), f) != (size_t)(end - line + 1);
    cursor[k % p] = end + 1;
  }
  free(cursor);
  if (fclose(f) || bad) GORP_ERR(GORP_EIO, "%s: write failed: %s", path, strerror(errno));
  return GORP_OK;
}

int cl_evaluate(model *m, const tokenizer *tok, const cl_task *t, const gorp_config *c,
                const dist *d, int task_index, const char *pred_path, cl_scores *s) {
  memset(s, 0, sizeof(*s));
  int n = t->n_test;
  if (c->data.max_test_per_task > 0 && c->data.max_test_per_task < n) n = c->data.max_test_per_task;
  const int cap = m->cfg.max_seq, max_new = c->eval.max_new_tokens;
  const int p = d ? d->dp_size : 1, me = d ? d->dp_rank : 0;
  int *prompt, *out, *order;
  GORP_ALLOC(order, t->n_test, "test order");
  /* A capped test set is a seeded sample, the same one after every task. */
  if (n < t->n_test)
    rng_permutation(order, t->n_test, c->run.seed, 0xE7A1ULL + (uint64_t)task_index);
  else
    for (int i = 0; i < n; i++) order[i] = i;
  GORP_ALLOC(prompt, cap, "evaluation prompt");
  GORP_ALLOC(out, max_new, "generated tokens");
  char *lines = NULL;
  size_t len = 0, lines_cap = 0;
  double counts[3] = {0};           /* correct, in list, scored */
  for (int k = me; k < n; k += p) { /* the data-parallel ranks share the items */
    const int i = order[k];
    const cl_item *item = &t->test[i];
    int plen = 0, n_out = 0;
    GORP_CALL(prompt_encode_eval(tok, t, item->sentence, c->data.max_source_length, prompt, &plen,
                                 cap - max_new));
    const int *const prompts[1] = {prompt};
    GORP_CALL(model_generate(m, prompts, &plen, 1, max_new, tok->eos_id, out, &n_out));
    /* a model whose vocabulary is padded past the tokenizer's (model.vocab_size) can emit an id
     * no string spells: the answer ends there, as at end-of-sequence */
    for (int j = 0; j < n_out; j++)
      if (out[j] >= tok->vocab_size) n_out = j;
    char *pred;
    GORP_CALL(tokenizer_decode(tok, out, n_out, &pred));
    GORP_CALL(utf8_repair(&pred));
    const int correct =
        strcmp(item->label, CL_LABEL_NONE) && metrics_exact_match(pred, item->label);
    const int in_list = metrics_in_list(pred, t->labels, t->n_labels);
    counts[0] += correct;
    counts[1] += in_list;
    counts[2] += 1;
    const int rc =
        append_prediction(&lines, &len, &lines_cap, i, pred, item->label, correct, in_list);
    free(pred);
    GORP_CALL(rc);
  }
  if (d) GORP_CALL(dist_sum_doubles(d, counts, 3));
  /* rank 0 gathers every rank's lines and writes the file */
  int *lens = NULL;
  char *all = lines;
  GORP_ALLOC(lens, p, "prediction sizes");
  if (p > 1)
    GORP_CALL(dist_dp_gather_bytes(d, lines, len, &all, lens));
  else
    lens[0] = (int)len;
  int rc = GORP_OK;
  /* one writer: the first DP group's rank of the first TP group (the others hold copies) */
  if (me == 0 && (!d || d->tp_rank == 0) && pred_path)
    rc = write_predictions(pred_path, all ? all : "", lens, p, n);
  if (all != lines) free(all);
  free(lines);
  free(lens);
  GORP_CALL(rc);
  s->correct = (int)counts[0];
  s->in_list = (int)counts[1];
  s->n = (int)counts[2];
  s->accuracy = s->n ? 100.0 * s->correct / s->n : 0.0;
  s->in_list_rate = s->n ? 100.0 * s->in_list / s->n : 0.0;
  free(order);
  free(prompt);
  free(out);
  return GORP_OK;
}
