/* CL_Benchmark loader (see clbench.h).
 *
 * The JSON files are read whole and checked as bytes before cJSON sees them: cJSON accepts
 * malformed UTF-8 and stops at a NUL byte, and both would otherwise reach the tokenizer as
 * silently different text. Errors count items from 0, as a Python reader would index them. */
#include "gorp/clbench.h"

#include "gorp/err.h"
#include "gorp/utf8.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int path_fmt(char out[PATH_MAX], const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int path_fmt(char out[PATH_MAX], const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int len = vsnprintf(out, PATH_MAX, fmt, ap);
  va_end(ap);
  if (len < 0 || len >= PATH_MAX)
    GORP_ERR(GORP_EINPUT, "path longer than %d bytes: %.200s...", PATH_MAX - 1, out);
  return GORP_OK;
}

/* 1-based line and column (in bytes) of offset off, for messages an editor can jump to. */
static void line_col(const char *buf, size_t off, int *line, int *col) {
  *line = 1;
  *col = 1;
  for (size_t i = 0; i < off; i++) {
    if (buf[i] == '\n') {
      (*line)++;
      *col = 1;
    } else {
      (*col)++;
    }
  }
}

/* Reads a whole regular file into a NUL-terminated malloc'd buffer. */
static int read_file(const char *path, char **out, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) GORP_ERR(GORP_EINPUT, "cannot open '%s': %s", path, strerror(errno));
  struct stat st;
  char *buf = NULL;
  const char *why = NULL;
  int code = GORP_EINPUT;
  if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
    why = "not a regular file";
  } else if (!(buf = malloc((size_t)st.st_size + 1))) {
    why = "out of memory";
    code = GORP_EMEM;
  } else if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
    why = ferror(f) ? strerror(errno) : "file shrank while being read";
  }
  fclose(f);
  if (why) {
    free(buf);
    GORP_ERR(code, "cannot read '%s': %s", path, why);
  }
  buf[st.st_size] = '\0';
  *out = buf;
  *len = (size_t)st.st_size;
  return GORP_OK;
}

static int parse_json_text(const char *path, const char *buf, size_t len, cJSON **out) {
  int line, col;
  const char *nul = memchr(buf, '\0', len);
  if (nul) {
    line_col(buf, (size_t)(nul - buf), &line, &col);
    GORP_ERR(GORP_EINPUT,
             "'%s': NUL byte at byte offset %zu (line %d, column %d); expected JSON text", path,
             (size_t)(nul - buf), line, col);
  }
  size_t bad = utf8_first_invalid((const unsigned char *)buf, len);
  if (bad < len) {
    line_col(buf, bad, &line, &col);
    GORP_ERR(GORP_EINPUT,
             "'%s': invalid UTF-8 (byte 0x%02X) at byte offset %zu (line %d, column %d); expected "
             "UTF-8 text",
             path, (unsigned char)buf[bad], bad, line, col);
  }
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithOpts(buf, &end, 1);
  if (!root) {
    size_t off = end ? (size_t)(end - buf) : 0;
    line_col(buf, off, &line, &col);
    GORP_ERR(GORP_EINPUT, "'%s': malformed JSON at byte offset %zu (line %d, column %d)%s", path,
             off, line, col, len ? "" : ": the file is empty");
  }
  *out = root;
  return GORP_OK;
}

static int parse_json_file(const char *path, cJSON **out) {
  char *buf = NULL;
  size_t len = 0;
  GORP_CALL(read_file(path, &buf, &len));
  int ierr = parse_json_text(path, buf, len, out);
  free(buf);
  return ierr;
}

/* What a JSON value is, for "expected X, found Y" messages. */
static const char *json_kind(const cJSON *v) {
  if (cJSON_IsString(v)) return "a string";
  if (cJSON_IsNumber(v)) return "a number";
  if (cJSON_IsBool(v)) return "a boolean";
  if (cJSON_IsNull(v)) return "null";
  if (cJSON_IsArray(v)) return "a list";
  if (cJSON_IsObject(v)) return "an object";
  return "an invalid value";
}

static int dup_string(char **dst, const char *src, const char *role) {
  GORP_ALLOC(*dst, strlen(src) + 1, role);
  strcpy(*dst, src);
  return GORP_OK;
}

static int labels_from_json(cl_task *t, const cJSON *root, const char *path) {
  if (!cJSON_IsArray(root))
    GORP_ERR(GORP_EINPUT, "'%s': expected a JSON list of label strings, found %s", path,
             json_kind(root));
  int count = cJSON_GetArraySize(root);
  if (count == 0) GORP_ERR(GORP_EINPUT, "'%s': the label list is empty", path);
  GORP_ALLOC(t->labels, count, path);
  t->n_labels = count;
  int i = 0;
  const cJSON *v;
  cJSON_ArrayForEach(v, root) {
    if (!cJSON_IsString(v) || !v->valuestring[0])
      GORP_ERR(GORP_EINPUT, "'%s': label %d (0-based) is %s, expected a non-empty string", path, i,
               cJSON_IsString(v) ? "empty" : json_kind(v));
    for (int k = 0; k < i; k++)
      if (!strcmp(t->labels[k], v->valuestring))
        GORP_ERR(GORP_EINPUT, "'%s': label '%s' appears twice (labels %d and %d, 0-based)", path,
                 v->valuestring, k, i);
    GORP_CALL(dup_string(&t->labels[i], v->valuestring, path));
    i++;
  }
  return GORP_OK;
}

static int is_label(const cl_task *t, const char *s) {
  for (int k = 0; k < t->n_labels; k++)
    if (!strcmp(t->labels[k], s)) return 1;
  return 0;
}

/* Fills *items from a split's JSON list. Labels must be in t->labels; with allow_none the label
 * CL_LABEL_NONE is kept too and counted in *n_none (unused, may be NULL, without allow_none). *n is
 * set before the items are filled so that clbench_free releases a partly filled split. */
static int split_from_json(const cl_task *t, const cJSON *root, const char *path, int allow_none,
                           const char *labels_path, cl_item **items, int *n, int *n_none) {
  if (!cJSON_IsArray(root))
    GORP_ERR(GORP_EINPUT,
             "'%s': expected a JSON list of {\"label\", \"sentence\"} objects, found %s", path,
             json_kind(root));
  int count = cJSON_GetArraySize(root);
  if (count == 0)
    GORP_ERR(GORP_EINPUT,
             "'%s': the split is empty; expected at least one {\"label\", \"sentence\"} "
             "object",
             path);
  GORP_ALLOC(*items, count, path);
  *n = count;
  int i = 0;
  const cJSON *it;
  cJSON_ArrayForEach(it, root) {
    if (!cJSON_IsObject(it))
      GORP_ERR(GORP_EINPUT,
               "'%s': item %d (0-based) is %s, expected an object with string keys \"label\" and "
               "\"sentence\"",
               path, i, json_kind(it));
    const char *keys[2] = {"label", "sentence"};
    const cJSON *val[2];
    for (int k = 0; k < 2; k++) {
      val[k] = cJSON_GetObjectItemCaseSensitive(it, keys[k]);
      if (!val[k])
        GORP_ERR(GORP_EINPUT, "'%s': item %d (0-based) has no \"%s\" key", path, i, keys[k]);
      if (!cJSON_IsString(val[k]))
        GORP_ERR(GORP_EINPUT, "'%s': item %d (0-based): \"%s\" is %s, expected a string", path, i,
                 keys[k], json_kind(val[k]));
    }
    const char *label = val[0]->valuestring;
    if (allow_none && !strcmp(label, CL_LABEL_NONE)) {
      (*n_none)++;
    } else if (!is_label(t, label)) {
      GORP_ERR(GORP_EINPUT, "'%s': item %d (0-based) has label '%s', which is not in '%s'%s", path,
               i, label, labels_path, allow_none ? " (nor the no-gold-label mark '-')" : "");
    }
    GORP_CALL(dup_string(&(*items)[i].label, label, path));
    GORP_CALL(dup_string(&(*items)[i].sentence, val[1]->valuestring, path));
    i++;
  }
  return GORP_OK;
}

static int instruction_from_json(cl_task *t, const cJSON *root, const char *path) {
  if (!cJSON_IsObject(root))
    GORP_ERR(GORP_EINPUT, "'%s': expected a JSON object keyed by task type, found %s", path,
             json_kind(root));
  /* Upstream builds COPA prompts with neither instruction nor Option line. */
  if (!strcmp(t->task_type, "COPA")) return GORP_OK;
  const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, t->task_type);
  if (!list)
    GORP_ERR(GORP_EINPUT,
             "'%s' has no instruction for task type '%s' (dataset '%s'); expected a key \"%s\": "
             "[{\"instruction\": \"...\"}]",
             path, t->task_type, t->dataset, t->task_type);
  const cJSON *first = cJSON_GetArrayItem(list, 0);
  const cJSON *ins = cJSON_GetObjectItemCaseSensitive(first, "instruction");
  if (!cJSON_IsArray(list) || !cJSON_IsObject(first) || !cJSON_IsString(ins))
    GORP_ERR(GORP_EINPUT,
             "'%s': key \"%s\" must be a list whose first element is an object with a string "
             "\"instruction\"",
             path, t->task_type);
  GORP_CALL(dup_string(&t->instruction, ins->valuestring, path));
  return GORP_OK;
}

/* Sets t->task_type to the one folder of root that holds a folder named dataset. */
static int find_dataset(cl_task *t, const char *root, const char *dataset) {
  if (!dataset[0] || dataset[0] == '.' || strchr(dataset, '/') || strlen(dataset) >= CL_NAME_MAX)
    GORP_ERR(GORP_EINPUT,
             "dataset name '%s' must be a folder name (not empty, no '/', no leading '.', at most "
             "%d bytes)",
             dataset, CL_NAME_MAX - 1);
  DIR *d = opendir(root);
  if (!d)
    GORP_ERR(GORP_EINPUT, "cannot open the data root '%s' (looking for dataset '%s'): %s", root,
             dataset, strerror(errno));
  char found[2][NAME_MAX + 1];
  int n_found = 0;
  const struct dirent *e;
  while ((e = readdir(d))) {
    char path[PATH_MAX];
    struct stat st;
    if (e->d_name[0] == '.') continue;
    if (snprintf(path, sizeof(path), "%s/%s/%s", root, e->d_name, dataset) >= (int)sizeof(path))
      continue; /* cannot name an existing folder */
    if (stat(path, &st) || !S_ISDIR(st.st_mode)) continue;
    if (n_found < 2) snprintf(found[n_found], sizeof(found[0]), "%s", e->d_name);
    n_found++;
  }
  closedir(d);
  if (n_found == 0)
    GORP_ERR(GORP_EINPUT, "dataset '%s' not found under '%s': no task-type folder holds '%s/'",
             dataset, root, dataset);
  if (n_found > 1) {
    int a = strcmp(found[0], found[1]) > 0; /* name them in a stable order */
    GORP_ERR(GORP_EINPUT,
             "dataset '%s' is ambiguous under '%s': found in task-type folders '%s' and '%s'%s",
             dataset, root, found[a], found[!a], n_found > 2 ? " (and more)" : "");
  }
  if (strlen(found[0]) >= CL_NAME_MAX)
    GORP_ERR(GORP_EINPUT, "task-type folder name '%s' under '%s' is longer than %d bytes", found[0],
             root, CL_NAME_MAX - 1);
  /* both lengths were checked above */
  memcpy(t->task_type, found[0], strlen(found[0]) + 1);
  memcpy(t->dataset, dataset, strlen(dataset) + 1);
  return GORP_OK;
}

static int load_labels(cl_task *t, const char *dir) {
  char path[PATH_MAX];
  cJSON *root;
  GORP_CALL(path_fmt(path, "%s/labels.json", dir));
  GORP_CALL(parse_json_file(path, &root));
  int ierr = labels_from_json(t, root, path);
  cJSON_Delete(root);
  return ierr;
}

static int load_split(cl_task *t, const char *dir, const char *name, int allow_none,
                      cl_item **items, int *n, int *n_none) {
  char path[PATH_MAX], labels_path[PATH_MAX];
  cJSON *root;
  GORP_CALL(path_fmt(path, "%s/%s", dir, name));
  GORP_CALL(path_fmt(labels_path, "%s/labels.json", dir));
  GORP_CALL(parse_json_file(path, &root));
  int ierr = split_from_json(t, root, path, allow_none, labels_path, items, n, n_none);
  cJSON_Delete(root);
  return ierr;
}

static int load_instruction(cl_task *t, const char *path) {
  cJSON *root;
  GORP_CALL(parse_json_file(path, &root));
  int ierr = instruction_from_json(t, root, path);
  cJSON_Delete(root);
  return ierr;
}

static int load_task(cl_task *t, const char *root, const char *dataset,
                     const char *instructions_path) {
  char dir[PATH_MAX];
  GORP_CALL(find_dataset(t, root, dataset));
  GORP_CALL(path_fmt(dir, "%s/%s/%s", root, t->task_type, dataset));
  GORP_CALL(load_labels(t, dir));
  GORP_CALL(load_split(t, dir, "train.json", 0, &t->train, &t->n_train, NULL));
  GORP_CALL(load_split(t, dir, "test.json", 1, &t->test, &t->n_test, &t->n_test_unlabelled));
  GORP_CALL(load_instruction(t, instructions_path));
  return GORP_OK;
}

int clbench_load(cl_task *t, const char *root, const char *dataset, const char *instructions_path) {
  *t = (cl_task){0};
  int ierr = load_task(t, root, dataset, instructions_path);
  if (ierr) clbench_free(t);
  return ierr;
}

static void free_items(cl_item *items, int n) {
  for (int i = 0; items && i < n; i++) {
    free(items[i].sentence);
    free(items[i].label);
  }
  free(items);
}

void clbench_free(cl_task *t) {
  for (int i = 0; t->labels && i < t->n_labels; i++) free(t->labels[i]);
  free(t->labels);
  free(t->instruction);
  free_items(t->train, t->n_train);
  free_items(t->test, t->n_test);
  *t = (cl_task){0};
}

int clbench_drop_unlabelled(cl_task *t) {
  int kept = 0;
  for (int i = 0; i < t->n_test; i++) {
    if (strcmp(t->test[i].label, CL_LABEL_NONE)) {
      t->test[kept++] = t->test[i];
    } else {
      free(t->test[i].sentence);
      free(t->test[i].label);
    }
  }
  const int dropped = t->n_test - kept;
  t->n_test = kept;
  t->n_test_unlabelled = 0;
  return dropped;
}
