/* CL_Benchmark loader (see clbench.h).
 *
 * The JSON files are read whole through json_read_file, which refuses what cJSON would read
 * differently from Python (malformed UTF-8, NUL bytes and \u0000 escapes, duplicate keys): each
 * would otherwise reach the tokenizer as silently different text. Errors count items from 0, as a
 * Python reader would index them. */
#include "gorp/clbench.h"

#include "gorp/err.h"
#include "gorp/fsutil.h"
#include "gorp/jsonutil.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* A label and its 0-based place in labels.json, sorted by text (then place) for lookups. */
typedef struct label_ref {
  const char *s;
  int i;
} label_ref;

static int cmp_label(const void *a, const void *b) {
  const label_ref *x = a, *y = b;
  const int c = strcmp(x->s, y->s);
  return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* Fills t->labels and *sorted (the same labels sorted, freed by the caller): sorting makes the
 * duplicate check and every item's label lookup O(log n), so a list of 10^5 labels loads in a
 * blink. */
static int labels_from_json(cl_task *t, const cJSON *root, const char *path, label_ref **sorted) {
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
    GORP_CALL(dup_string(&t->labels[i], v->valuestring, path));
    i++;
  }
  GORP_ALLOC(*sorted, count, "the sorted labels");
  for (i = 0; i < count; i++) (*sorted)[i] = (label_ref){t->labels[i], i};
  qsort(*sorted, (size_t)count, sizeof(**sorted), cmp_label);
  /* of all repeats, name the one a reader of the file meets first */
  int dup = -1;
  for (i = 1; i < count; i++)
    if (!strcmp((*sorted)[i - 1].s, (*sorted)[i].s) &&
        (dup < 0 || (*sorted)[i].i < (*sorted)[dup].i))
      dup = i;
  if (dup >= 0)
    GORP_ERR(GORP_EINPUT, "'%s': label '%s' appears twice (labels %d and %d, 0-based)", path,
             (*sorted)[dup].s, (*sorted)[dup - 1].i, (*sorted)[dup].i);
  return GORP_OK;
}

static int is_label(const label_ref *sorted, int n, const char *s) {
  int lo = 0, hi = n;
  while (lo < hi) {
    const int mid = lo + (hi - lo) / 2, c = strcmp(sorted[mid].s, s);
    if (!c) return 1;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return 0;
}

/* Fills *items from a split's JSON list. Labels must be in t->labels; with allow_none the label
 * CL_LABEL_NONE is kept too and counted in *n_none (unused, may be NULL, without allow_none). *n is
 * set before the items are filled so that clbench_free releases a partly filled split. */
static int split_from_json(const cl_task *t, const label_ref *sorted, const cJSON *root,
                           const char *path, int allow_none, const char *labels_path,
                           cl_item **items, int *n, int *n_none) {
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
    } else if (!is_label(sorted, t->n_labels, label)) {
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

static int load_labels(cl_task *t, const char *dir, label_ref **sorted) {
  char path[PATH_MAX];
  cJSON *root;
  GORP_CALL(fs_path_fmt(path, sizeof(path), "%s/labels.json", dir));
  GORP_CALL(json_read_file(path, "dataset file", FS_MAX_DATASET, &root));
  int ierr = labels_from_json(t, root, path, sorted);
  cJSON_Delete(root);
  return ierr;
}

static int load_split(cl_task *t, const label_ref *sorted, const char *dir, const char *name,
                      int allow_none, cl_item **items, int *n, int *n_none) {
  char path[PATH_MAX], labels_path[PATH_MAX];
  cJSON *root;
  GORP_CALL(fs_path_fmt(path, sizeof(path), "%s/%s", dir, name));
  GORP_CALL(fs_path_fmt(labels_path, sizeof(labels_path), "%s/labels.json", dir));
  GORP_CALL(json_read_file(path, "dataset file", FS_MAX_DATASET, &root));
  int ierr = split_from_json(t, sorted, root, path, allow_none, labels_path, items, n, n_none);
  cJSON_Delete(root);
  return ierr;
}

static int load_instruction(cl_task *t, const char *path) {
  cJSON *root;
  GORP_CALL(json_read_file(path, "data.instructions", FS_MAX_INSTRUCTIONS, &root));
  int ierr = instruction_from_json(t, root, path);
  cJSON_Delete(root);
  return ierr;
}

static int load_task(cl_task *t, const char *root, const char *dataset,
                     const char *instructions_path) {
  char dir[PATH_MAX];
  GORP_CALL(find_dataset(t, root, dataset));
  GORP_CALL(fs_path_fmt(dir, sizeof(dir), "%s/%s/%s", root, t->task_type, dataset));
  label_ref *sorted = NULL;
  int ierr = load_labels(t, dir, &sorted);
  if (!ierr) ierr = load_split(t, sorted, dir, "train.json", 0, &t->train, &t->n_train, NULL);
  if (!ierr)
    ierr = load_split(t, sorted, dir, "test.json", 1, &t->test, &t->n_test, &t->n_test_unlabelled);
  free(sorted);
  GORP_CALL(ierr);
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
