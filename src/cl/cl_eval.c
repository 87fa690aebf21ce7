/* Evaluation half of the runner (cl.h): the set of ids decoding stops at, greedy decoding of the
 * test prompts with the KV cache, eval.batch_size prompts of similar length at a time, normalised
 * exact match and the in-list rate, and the per-item prediction file (in item order, whatever the
 * batches were). Not for: the decoding arithmetic (model_generate.c) or the prompt layout
 * (prompt.c). */
#include "gorp/cl.h"

#include "gorp/ckpt.h"
#include "gorp/err.h"
#include "gorp/fsutil.h"
#include "gorp/metrics.h"
#include "gorp/out.h"
#include "gorp/proc.h"
#include "gorp/prompt.h"
#include "gorp/rng.h"
#include "gorp/utf8.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int cl_decode_answer(const tokenizer *tok, const int *ids, int n, char **text) {
  /* a model whose vocabulary is padded past the tokenizer's (model.vocab_size) can emit an id no
   * string spells: the answer ends there, as at a stop id */
  for (int j = 0; j < n; j++)
    if (ids[j] >= tok->vocab_size) n = j;
  GORP_CALL(tokenizer_decode(tok, ids, n, text));
  return utf8_repair(text);
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

int cl_stop_ids(const model *m, const tokenizer *tok, const gorp_config *c, int *stop,
                int *n_stop) {
  GORP_CHECK(c->eval.n_stop <= CL_MAX_STOP_TEXTS, GORP_EINPUT,
             "eval.stop lists %d token texts; at most %d", c->eval.n_stop, CL_MAX_STOP_TEXTS);
  int extra[1 + CL_MAX_STOP_TEXTS], n_extra = 0;
  extra[n_extra++] = tok->eos_id; /* what training appends after every answer */
  for (int i = 0; i < c->eval.n_stop; i++) {
    const char *text = c->eval.stop[i];
    int ids[8], n_all = 0, n = 0; /* all its ids are counted, the first 8 kept for the message */
    GORP_CALL(tokenizer_encode(tok, text, NULL, &n_all, 0));
    GORP_CALL(tokenizer_encode_head(tok, text, 8, ids, &n, 8));
    if (n_all == 1) {
      extra[n_extra++] = ids[0];
      continue;
    }
    char got[128] = "no ids";
    if (n) got[0] = '\0';
    for (int j = 0; j < n; j++)
      snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%d", j ? " " : "", ids[j]);
    if (n_all > n) snprintf(got + strlen(got), sizeof(got) - strlen(got), " ... (%d ids)", n_all);
    GORP_ERR(GORP_EINPUT,
             "eval.stop: '%s' must be exactly one token of the run's tokenizer (%s); it encodes to "
             "%s",
             text, c->data.tokenizer, got);
  }
  model_stop_ids(m, extra, n_extra, stop, n_stop);
  return GORP_OK;
}

/* This rank's share of a task's test items, encoded: item k (k = 0..n-1) is the test item
 * t->test[item[k]], its prompt ids[off[k] .. off[k] + len[k]). */
typedef struct eval_prompts {
  int n;
  int *item, *len, *ids;
  size_t *off;
} eval_prompts;

static void eval_prompts_free(eval_prompts *e) {
  free(e->item);
  free(e->off);
  free(e->len);
  free(e->ids);
  memset(e, 0, sizeof(*e));
}

/* Encodes the prompts of the items in order[first], order[first + step], ... (k < n). */
static int eval_prompts_encode(eval_prompts *e, const tokenizer *tok, const cl_task *t,
                               const gorp_config *c, const int *order, int first, int step, int n,
                               int cap) {
  memset(e, 0, sizeof(*e));
  const int mine = first < n ? (n - first + step - 1) / step : 0;
  GORP_ALLOC(e->item, mine + 1, "evaluation items");
  GORP_ALLOC(e->off, mine + 1, "evaluation prompt offsets");
  GORP_ALLOC(e->len, mine + 1, "evaluation prompt lengths");
  int *one; /* (cap) the prompt being encoded */
  GORP_ALLOC(one, cap, "evaluation prompt");
  size_t used = 0, room = 0;
  int rc = GORP_OK;
  for (int k = first; k < n && !rc; k += step) {
    int len = 0;
    const int i = order[k];
    rc = prompt_encode_eval(tok, t, t->test[i].sentence, c->data.max_source_length, one, &len,
                            cap - c->eval.max_new_tokens);
    if (!rc && used + (size_t)len > room) {
      room = 2 * (used + (size_t)len);
      int *grown = realloc(e->ids, room * sizeof(int));
      if (grown)
        e->ids = grown;
      else
        rc =
            GORP_ERROR(GORP_EMEM, "out of memory holding the evaluation prompts of %s", t->dataset);
    }
    if (rc) break;
    memcpy(e->ids + used, one, (size_t)len * sizeof(int));
    e->item[e->n] = i;
    e->off[e->n] = used;
    e->len[e->n++] = len;
    used += (size_t)len;
  }
  free(one);
  return rc;
}

/* qsort of ((INT_MAX - prompt length) << 32 | index) keys: longest first, so that the first
 * batch sizes the KV cache once (model_generate grows it only when a batch needs more), ties in
 * item order (a stable sort) */
static int cmp_key(const void *a, const void *b) {
  const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* A progress line from rank 0 at most every EVAL_PROGRESS_S seconds. */
enum { EVAL_PROGRESS_S = 5 };

static void print_progress(const cl_task *t, int done, int total, double t0) {
  const double s = proc_now_s() - t0, rate = s > 0 ? done / s : 0.0;
  out_printf("  eval %-12s %d/%d prompts, %.2f prompts/s, elapsed %.1f s, ETA %.0f s\n", t->dataset,
             done, total, rate, s, rate > 0 ? (total - done) / rate : 0.0);
  out_flush();
}

/* Decodes e's prompts that have no answer yet (pred[k] NULL), c->eval.batch_size at a time,
 * longest first (batch size 1: in item order), into pred[k] (text of prompt k, malloc'd). With a
 * hook every rank polls it after each batch, as often as the rank with the most batches; when it
 * says stop, the answers so far are kept and CKPT_EXIT_RESUBMIT returned. */
static int decode_all(model *m, const tokenizer *tok, const cl_task *t, const gorp_config *c,
                      const eval_prompts *e, const int *stop, int n_stop, const cl_eval_hook *hook,
                      const dist *d, char **pred) {
  const int bs = c->eval.batch_size, max_new = c->eval.max_new_tokens;
  int64_t *by_len; /* (e->n) prompt indices, longest prompt first (low 32 bits) */
  int *out, *n_out, *lens;
  const int **prompts;
  GORP_ALLOC(by_len, e->n + 1, "evaluation order");
  GORP_ALLOC(out, (size_t)bs * max_new, "generated tokens");
  GORP_ALLOC(n_out, bs, "generated lengths");
  GORP_ALLOC(lens, bs, "batch prompt lengths");
  GORP_ALLOC(prompts, bs, "batch prompts");
  for (int k = 0; k < e->n; k++) by_len[k] = (int64_t)(INT_MAX - e->len[k]) << 32 | k;
  /* one at a time needs no order: batch size 1 stays the plain item-order decoding that the
   * batched one must equal (tests/cli/eval_batched.sh) */
  if (bs > 1) qsort(by_len, (size_t)e->n, sizeof(*by_len), cmp_key);
  /* a resumed evaluation has the answers of the first batches in this order (the ones a signal
   * let finish): the rest is batched as in the uninterrupted run */
  int todo = 0;
  for (int j = 0; j < e->n; j++)
    if (!pred[by_len[j] & 0xFFFFFFFF]) by_len[todo++] = by_len[j];
  int rounds = (todo + bs - 1) / bs, rc = GORP_OK;
  if (hook) rc = dist_max_ints(d, &rounds, 1); /* every rank polls as often */
  const double t0 = proc_now_s();
  double last = t0;
  for (int round = 0, first = 0; round < rounds && !rc; round++, first += bs) {
    const int nb = first >= todo ? 0 : todo - first < bs ? todo - first : bs;
    for (int b = 0; b < nb; b++) {
      const int k = (int)(by_len[first + b] & 0xFFFFFFFF);
      prompts[b] = e->ids + e->off[k];
      lens[b] = e->len[k];
    }
    if (nb) rc = model_generate(m, prompts, lens, nb, max_new, stop, n_stop, out, n_out);
    for (int b = 0; b < nb && !rc; b++)
      rc = cl_decode_answer(tok, out + (size_t)b * max_new, n_out[b],
                            &pred[by_len[first + b] & 0xFFFFFFFF]);
    const double now = proc_now_s();
    if (!rc && first + nb < todo && now - last >= EVAL_PROGRESS_S) {
      print_progress(t, e->n - todo + first + nb, e->n, t0);
      last = now;
    }
    int halt = 0;
    if (!rc && hook) rc = hook->poll(hook->ctx, &halt);
    if (!rc && halt && round + 1 < rounds) rc = CKPT_EXIT_RESUBMIT;
  }
  if (!rc && last > t0) print_progress(t, e->n, e->n, t0); /* the end of a long evaluation */
  free(by_len);
  free(out);
  free(n_out);
  free(lens);
  free(prompts);
  return rc;
}

/* A resumed cell's finished answers: every line of the partial prediction file (partial_write)
 * whose item is one of this rank's goes into pred. A missing file (removed, or a fallback to a
 * checkpoint older than the cell's end) means decoding the cell from its start. */
static int partial_read(const char *path, const cl_task *t, const eval_prompts *e, char **pred) {
  if (access(path, F_OK)) {
    out_printf("  eval %-12s no %s: decoding every prompt\n", t->dataset, path);
    return GORP_OK;
  }
  char *buf;
  size_t len;
  GORP_CALL(fs_read_regular(path, "partial prediction file", FS_MAX_DATASET, &buf, &len));
  int *slot; /* (n_test) this rank's prompt index of each test item, -1: another rank's */
  GORP_ALLOC(slot, t->n_test + 1, "evaluation items");
  for (int i = 0; i < t->n_test; i++) slot[i] = -1;
  for (int k = 0; k < e->n; k++) slot[e->item[k]] = k;
  int rc = GORP_OK, line_no = 0, got = 0;
  for (char *line = buf, *next; *line && !rc; line = next) {
    char *end = strchr(line, '\n');
    line_no++;
    if (!end) {
      rc = GORP_ERROR(GORP_EINPUT,
                      "%s: line %d does not end (delete the file to decode the "
                      "task's prompts from the start)",
                      path, line_no);
      break;
    }
    *end = '\0';
    next = end + 1;
    cJSON *o = cJSON_Parse(line);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id"),
                *p = cJSON_GetObjectItemCaseSensitive(o, "prediction");
    const double v = cJSON_IsNumber(id) ? id->valuedouble : -1.0;
    if (!cJSON_IsString(p) || !(v >= 0 && v < t->n_test) || v != (int)v)
      rc = GORP_ERROR(GORP_EINPUT,
                      "%s: line %d is not a prediction line {\"id\": a test item of %s (0..%d), "
                      "\"prediction\": text, ...} (delete the file to decode the task's prompts "
                      "from the start)",
                      path, line_no, t->dataset, t->n_test - 1);
    else if (slot[(int)v] >= 0 && !pred[slot[(int)v]]) {
      pred[slot[(int)v]] = strdup(p->valuestring);
      if (!pred[slot[(int)v]]) rc = GORP_ERROR(GORP_EMEM, "out of memory reading %s", path);
      got++;
    }
    cJSON_Delete(o);
  }
  free(slot);
  free(buf);
  if (!rc)
    out_printf("  eval %-12s resumed: %d of this rank's %d prompts answered before the stop\n",
               t->dataset, got, e->n);
  return rc;
}

/* The answers a stopped cell finished, as prediction lines in any order, published atomically
 * (tmp, fsync, rename) so that the checkpoint saved next never names a half-written file. */
static int partial_write(const char *path, const char *all, size_t len) {
  char tmp[4200];
  GORP_CALL(fs_path_fmt(tmp, sizeof(tmp), "%s.tmp", path));
  FILE *f = fopen(tmp, "w");
  if (!f) GORP_ERR(GORP_EIO, "%s: cannot create: %s", tmp, strerror(errno));
  const int bad = fwrite(all, 1, len, f) != len;
  if (fclose(f) || bad) {
    const int err = errno;
    unlink(tmp);
    GORP_ERR(GORP_EIO, "%s: write failed: %s", tmp, strerror(err));
  }
  return fs_publish(tmp, path);
}

/* Scores pred (e's items in order; NULL: not decoded, a stopped evaluation) and appends their
 * prediction lines to lines. */
static int score_all(const cl_task *t, const eval_prompts *e, char *const *pred, double *counts,
                     char **lines, size_t *len, size_t *cap) {
  for (int k = 0; k < e->n; k++) {
    if (!pred[k]) continue;
    const cl_item *item = &t->test[e->item[k]];
    const int correct =
        strcmp(item->label, CL_LABEL_NONE) && metrics_exact_match(pred[k], item->label);
    const int in_list = metrics_in_list(pred[k], t->labels, t->n_labels);
    counts[0] += correct;
    counts[1] += in_list;
    counts[2] += 1;
    GORP_CALL(
        append_prediction(lines, len, cap, e->item[k], pred[k], item->label, correct, in_list));
  }
  return GORP_OK;
}

int cl_evaluate(model *m, const tokenizer *tok, const cl_task *t, const gorp_config *c,
                const dist *d, int task_index, const int *stop, int n_stop, const char *pred_path,
                const cl_eval_hook *hook, cl_scores *s) {
  memset(s, 0, sizeof(*s));
  int n = t->n_test;
  if (c->data.max_test_per_task > 0 && c->data.max_test_per_task < n) n = c->data.max_test_per_task;
  const int p = d ? d->dp_size : 1, me = d ? d->dp_rank : 0;
  int *order;
  GORP_ALLOC(order, t->n_test, "test order");
  /* A capped test set is a seeded sample, the same one after every task. */
  if (n < t->n_test)
    rng_permutation(order, t->n_test, c->run.seed, 0xE7A1ULL + (uint64_t)task_index);
  else
    for (int i = 0; i < n; i++) order[i] = i;
  /* the data-parallel ranks share the items: rank r takes k = r, r + p, ... */
  eval_prompts e;
  int rc = eval_prompts_encode(&e, tok, t, c, order, me, p, n, m->cfg.max_seq);
  free(order);
  char **pred = NULL; /* (e.n) the decoded answer of each of this rank's items */
  if (!rc) pred = calloc((size_t)e.n + 1, sizeof(char *));
  if (!rc && !pred) rc = GORP_ERROR(GORP_EMEM, "out of memory holding %d predictions", e.n);
  if (!rc && hook && hook->resume) rc = partial_read(hook->partial_path, t, &e, pred);
  if (!rc) rc = decode_all(m, tok, t, c, &e, stop, n_stop, hook, d, pred);
  const int stopped = rc == CKPT_EXIT_RESUBMIT;
  if (stopped) rc = GORP_OK;
  char *lines = NULL;
  size_t len = 0, lines_cap = 0;
  double counts[3] = {0}; /* correct, in list, scored */
  if (!rc) rc = score_all(t, &e, pred, counts, &lines, &len, &lines_cap);
  for (int k = 0; pred && k < e.n; k++) free(pred[k]);
  free(pred);
  eval_prompts_free(&e);
  if (rc) free(lines);
  GORP_CALL(rc);
  if (d && !stopped) GORP_CALL(dist_sum_doubles(d, counts, 3));
  /* rank 0 gathers every rank's lines and writes the file */
  int *lens = NULL;
  char *all = lines;
  GORP_ALLOC(lens, p, "prediction sizes");
  if (p > 1)
    GORP_CALL(dist_dp_gather_bytes(d, lines, len, &all, lens));
  else
    lens[0] = (int)len;
  /* one writer: the first DP group's rank of the first TP group (the others hold copies) */
  if (me == 0 && (!d || d->tp_rank == 0)) {
    size_t total = 0;
    for (int r = 0; r < p; r++) total += (size_t)lens[r];
    if (stopped)
      rc = partial_write(hook->partial_path, all ? all : "", total);
    else if (pred_path)
      rc = write_predictions(pred_path, all ? all : "", lens, p, n);
    /* the cell is complete: its partial answers are no longer needed */
    if (!rc && !stopped && hook && unlink(hook->partial_path) && errno != ENOENT)
      rc = GORP_ERROR(GORP_EIO, "%s: cannot remove: %s", hook->partial_path, strerror(errno));
  }
  if (all != lines) free(all);
  free(lines);
  free(lens);
  if (hook) { /* the checkpoint that follows a stop is collective: every rank learns the verdict */
    int bad = rc != GORP_OK;
    GORP_CALL(dist_max_ints(d, &bad, 1));
    if (bad && !rc)
      rc = GORP_ERROR(GORP_EIO,
                      "writing the predictions of %s failed on another "
                      "rank",
                      t->dataset);
  }
  GORP_CALL(rc);
  if (stopped) return CKPT_EXIT_RESUBMIT;
  s->correct = (int)counts[0];
  s->in_list = (int)counts[1];
  s->n = (int)counts[2];
  s->accuracy = s->n ? 100.0 * s->correct / s->n : 0.0;
  s->in_list_rate = s->n ? 100.0 * s->in_list / s->n : 0.0;
  return GORP_OK;
}
