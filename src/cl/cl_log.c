/* metrics.jsonl (cl_log.h): the resume's cut of the file, the history rebuilt from what it keeps,
 * and the lines themselves (cJSON does the escaping and prints numbers that read back exactly). */
#include "gorp/cl_log.h"

#include "gorp/err.h"
#include "gorp/fsutil.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The most a resume reads back (about 20 million lines of ~200 bytes); a larger file is refused
 * naming the limit. */
#define CL_LOG_MAX_BYTES (4ull << 30)

/* Whether a line of run phase `phase` (evaluation row r: 2r; training of task k, 1-based: 2k-1)
 * at `sub` within it (a row's 0-based column, a task's 1-based step) came before position p. */
static int before(const ckpt_pos *p, int T, int mtl, int phase, int sub) {
  if (!p->done) {
    const int at = 2 * p->task + 1;
    return phase < at || (phase == at && sub <= p->step);
  }
  const int row = p->task < 0 ? 0 : mtl ? T : p->task + 1, at = 2 * row;
  if (!p->eval_task) return phase <= at;
  return phase < at || (phase == at && sub < p->eval_task - 1);
}

/* A number field of o, required to be an integer in [lo, hi]. */
static int int_field(const cJSON *o, const char *key, int lo, int hi, int *v) {
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!cJSON_IsNumber(x) || x->valuedouble != (int)x->valuedouble || x->valuedouble < lo ||
      x->valuedouble > hi)
    return 0;
  *v = (int)x->valuedouble;
  return 1;
}

static int num_field(const cJSON *o, const char *key, double *v) {
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!cJSON_IsNumber(x)) return 0;
  *v = x->valuedouble;
  return 1;
}

/* The losses of one curve as the kept lines give them (NaN at a step without a line). */
typedef struct curve {
  float *loss;
  int len, cap;
  double elapsed;
} curve;

static int curve_put(curve *c, int step, float loss, double elapsed) {
  if (step > c->cap) {
    int cap = c->cap ? c->cap : 64;
    while (cap < step) cap *= 2;
    float *x = realloc(c->loss, (size_t)cap * sizeof(float));
    if (!x) GORP_ERR(GORP_EMEM, "out of memory reading the loss curves back");
    c->loss = x;
    c->cap = cap;
  }
  for (int i = c->len; i < step - 1; i++) c->loss[i] = NAN;
  c->loss[step - 1] = loss;
  if (step > c->len) c->len = step;
  c->elapsed = elapsed;
  return GORP_OK;
}

/* One line o (number `no` of path): *keep whether it came before p; kept, its content goes into
 * the curves cv (n_curves of them) and res's evaluation seconds. */
static int read_line(const cJSON *o, const char *path, long no, const ckpt_pos *p, cl_results *res,
                     curve *cv, int *keep) {
  const cJSON *kind = cJSON_GetObjectItemCaseSensitive(o, "kind");
  const int T = res->T, train = cJSON_IsString(kind) && !strcmp(kind->valuestring, "train"),
            eval = cJSON_IsString(kind) && !strcmp(kind->valuestring, "eval");
  int k, step, row;
  double x, loss, elapsed;
  if (train && int_field(o, "task_index", 1, res->mtl ? 1 : T, &k) &&
      int_field(o, "step", 1, CL_MAX_STEPS, &step) && num_field(o, "loss", &loss) &&
      num_field(o, "elapsed_s", &elapsed)) {
    *keep = before(p, T, res->mtl, 2 * k - 1, step);
    return *keep ? curve_put(&cv[k - 1], step, (float)loss, elapsed) : GORP_OK;
  }
  if (eval && int_field(o, "after", 0, T, &row) && int_field(o, "task_index", 1, T, &k) &&
      num_field(o, "seconds", &x)) {
    *keep = before(p, T, res->mtl, 2 * row, k - 1);
    if (*keep) res->eval_s[row] = (isnan(res->eval_s[row]) ? 0.0 : res->eval_s[row]) + x;
    return GORP_OK;
  }
  GORP_ERR(GORP_EINPUT,
           "%s, line %ld: not a metrics line of this run (a \"train\" line with task_index, step, "
           "loss and elapsed_s, or an \"eval\" line with after, task_index and seconds, for its "
           "%d task(s)); remove the file or the line to resume",
           path, no, T);
}

/* Cuts text (len bytes) after the last line that came before p (*keep_len bytes), filling res's
 * history from the kept lines. */
static int cut(const char *path, const char *text, size_t len, const ckpt_pos *p, cl_results *res,
               curve *cv, size_t *keep_len) {
  *keep_len = 0;
  long no = 0;
  for (size_t at = 0; at < len;) {
    const char *nl = memchr(text + at, '\n', len - at);
    if (!nl) return GORP_OK; /* an unfinished last line */
    const size_t n = (size_t)(nl - (text + at));
    no++;
    cJSON *o = cJSON_ParseWithLength(text + at, n);
    int keep = 0, rc = o ? read_line(o, path, no, p, res, cv, &keep)
                         : GORP_ERROR(GORP_EINPUT,
                                      "%s, line %ld: not JSON; remove the file or "
                                      "the line to resume",
                                      path, no);
    cJSON_Delete(o);
    GORP_CALL(rc);
    if (!keep) return GORP_OK; /* the lines are in run order: the rest came later too */
    at += n + 1;
    *keep_len = at;
  }
  return GORP_OK;
}

/* Rank 0's part of cl_log_open: the cut and the history from what it keeps. */
static int reopen(cl_log *l, const ckpt_pos *p, cl_results *res, curve *cv, double *elapsed) {
  char *text = NULL;
  size_t len = 0, keep = 0;
  /* a fresh run keeps nothing of what an earlier run there left, and does not read it */
  const int exists = access(l->path, F_OK) == 0, fresh = p->task == -2;
  if (exists && !fresh)
    GORP_CALL(fs_read_regular(l->path, "metrics file", CL_LOG_MAX_BYTES, &text, &len));
  int rc = text ? cut(l->path, text, len, p, res, cv, &keep) : GORP_OK;
  if (!rc && exists && (fresh || keep < len)) rc = fs_write_file(l->path, text ? text : "", keep);
  free(text);
  GORP_CALL(rc);
  const int n_done = p->task == -2 ? 0 : p->done ? p->task + 1 : p->task;
  for (int i = 0; i < res->n_curves; i++) {
    if (i < n_done && cv[i].len)
      GORP_CALL(cl_results_set_curve(res, i, cv[i].loss, cv[i].len, cv[i].elapsed));
    if (i == p->task && !p->done) *elapsed = cv[i].elapsed;
  }
  l->f = fopen(l->path, "a");
  if (!l->f) GORP_ERR(GORP_EIO, "cannot open %s for appending: %s", l->path, strerror(errno));
  return GORP_OK;
}

int cl_log_open(cl_log *l, const char *dir, int rank0, const ckpt_pos *p, cl_results *res,
                double *elapsed) {
  l->f = NULL;
  *elapsed = 0.0;
  GORP_CALL(fs_path_fmt(l->path, sizeof(l->path), "%s/metrics.jsonl", dir));
  if (!rank0) return GORP_OK;
  curve *cv;
  GORP_ALLOC(cv, res->n_curves, "loss curves read back");
  const int rc = reopen(l, p, res, cv, elapsed);
  for (int i = 0; i < res->n_curves; i++) free(cv[i].loss);
  free(cv);
  return rc;
}

/* Appends o as one line and flushes it; o is deleted. Fault injection for the tests (as ckpt.c's
 * GORP_FAULT_SAVE_ABORT): GORP_FAULT_LOG_KILL=k makes the process SIGKILL itself right after its
 * k-th line, a kill -9 at a known point of the run whatever the machine's speed. */
static int put(cl_log *l, cJSON *o) {
  static int lines;
  char *line = o ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  if (!line) GORP_ERR(GORP_EMEM, "out of memory writing a line of %s", l->path);
  const int bad = fprintf(l->f, "%s\n", line) < 0 || fflush(l->f);
  free(line);
  if (bad) GORP_ERR(GORP_EIO, "cannot write %s: %s", l->path, strerror(errno));
  const char *k = getenv("GORP_FAULT_LOG_KILL");
  if (k && ++lines == atoi(k)) raise(SIGKILL);
  return GORP_OK;
}

/* A number, or null where it is not finite (JSON has no NaN). */
static void add_num(cJSON *o, const char *key, double v) {
  if (isfinite(v))
    cJSON_AddNumberToObject(o, key, v);
  else
    cJSON_AddNullToObject(o, key);
}

/* A float32 value in the fewest digits that read back as the same float (a loss 5.4801645, a
 * rate 0.0002, not the float's double 0.000199999994947575). */
static void add_float(cJSON *o, const char *key, float v) {
  if (!isfinite(v)) {
    cJSON_AddNullToObject(o, key);
    return;
  }
  char buf[32];
  for (int digits = 6; digits <= 9; digits++) {
    snprintf(buf, sizeof(buf), "%.*g", digits, (double)v);
    if (strtof(buf, NULL) == v) break;
  }
  cJSON_AddRawToObject(o, key, buf);
}

int cl_log_train(cl_log *l, const cl_log_step *s) {
  if (!l->f) return GORP_OK;
  cJSON *o = cJSON_CreateObject();
  if (o) {
    cJSON_AddStringToObject(o, "kind", "train");
    cJSON_AddStringToObject(o, "task", s->task);
    cJSON_AddNumberToObject(o, "task_index", s->task_index);
    cJSON_AddNumberToObject(o, "step", s->step);
    cJSON_AddNumberToObject(o, "steps", s->steps);
    add_float(o, "loss", s->loss);
    const struct {
      const char *key;
      double v;
    } lr[3] = {{"lr", s->lr.lr}, {"lora_lr", s->lr.lora_lr}, {"full_lr", s->lr.full_lr}};
    for (int i = 0; i < 3; i++)
      if (lr[i].v > 0.0) add_float(o, lr[i].key, (float)lr[i].v);
    add_num(o, "grad_norm", s->grad_norm);
    cJSON_AddNumberToObject(o, "tokens", (double)s->tokens);
    add_num(o, "tokens_per_s", s->tokens_per_s);
    add_num(o, "elapsed_s", s->elapsed_s);
  }
  return put(l, o);
}

int cl_log_eval(cl_log *l, int row, const char *task, int task_index, const cl_scores *s,
                double seconds) {
  if (!l->f) return GORP_OK;
  cJSON *o = cJSON_CreateObject();
  if (o) {
    cJSON_AddStringToObject(o, "kind", "eval");
    cJSON_AddNumberToObject(o, "after", row);
    cJSON_AddStringToObject(o, "task", task);
    cJSON_AddNumberToObject(o, "task_index", task_index);
    add_num(o, "accuracy", s->accuracy);
    add_num(o, "in_list", s->in_list_rate);
    cJSON_AddNumberToObject(o, "correct", s->correct);
    cJSON_AddNumberToObject(o, "n", s->n);
    add_num(o, "seconds", seconds);
  }
  return put(l, o);
}

void cl_log_close(cl_log *l) {
  if (l->f) fclose(l->f);
  l->f = NULL;
}
