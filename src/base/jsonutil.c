/* Checked JSON parsing of input files (see jsonutil.h). */
#include "gorp/jsonutil.h"

#include "gorp/err.h"
#include "gorp/fsutil.h"
#include "gorp/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Offset of the first \u0000 escape in the strings of valid JSON text, or len; *item is the
 * 0-based element of a top-level list that holds it (-1 when the top level is not a list). */
static size_t find_nul_escape(const char *s, size_t len, long *item) {
  int in_string = 0, depth = 0, top_list = 0;
  *item = -1;
  for (size_t i = 0; i < len; i++) {
    const char ch = s[i];
    if (in_string) {
      if (ch == '\\') {
        if (s[i + 1] == 'u' && i + 5 < len && !memcmp(s + i + 2, "0000", 4)) return i;
        i++; /* the escaped character (a quote or backslash does not end anything) */
      } else if (ch == '"') {
        in_string = 0;
      }
    } else if (ch == '"') {
      in_string = 1;
    } else if (ch == '[' || ch == '{') {
      if (depth == 0 && ch == '[') {
        top_list = 1;
        *item = 0;
      }
      depth++;
    } else if (ch == ']' || ch == '}') {
      depth--;
    } else if (ch == ',' && depth == 1 && top_list) {
      (*item)++;
    }
  }
  return len;
}

int json_parse(const char *path, const char *text, size_t len, cJSON **root) {
  int line, col;
  const char *nul = memchr(text, '\0', len);
  if (nul) {
    line_col(text, (size_t)(nul - text), &line, &col);
    GORP_ERR(GORP_EINPUT,
             "'%s': NUL byte at byte offset %zu (line %d, column %d); expected JSON text", path,
             (size_t)(nul - text), line, col);
  }
  const size_t bad = utf8_first_invalid((const unsigned char *)text, len);
  if (bad < len) {
    line_col(text, bad, &line, &col);
    GORP_ERR(GORP_EINPUT,
             "'%s': invalid UTF-8 (byte 0x%02X) at byte offset %zu (line %d, column %d); expected "
             "UTF-8 text",
             path, (unsigned char)text[bad], bad, line, col);
  }
  const char *end = NULL;
  cJSON *r = cJSON_ParseWithLengthOpts(text, len + 1, &end, 1);
  if (!r) {
    const size_t off = end ? (size_t)(end - text) : 0;
    line_col(text, off, &line, &col);
    GORP_ERR(GORP_EINPUT, "'%s': malformed JSON at byte offset %zu (line %d, column %d)%s", path,
             off, line, col, len ? "" : ": the file is empty");
  }
  long item;
  const size_t at = find_nul_escape(text, len, &item);
  if (at < len) {
    cJSON_Delete(r);
    line_col(text, at, &line, &col);
    char where[64] = "";
    if (item >= 0) snprintf(where, sizeof(where), " in item %ld (0-based)", item);
    GORP_ERR(GORP_EINPUT,
             "'%s': \\u0000 (a NUL character) at byte offset %zu (line %d, column %d)%s; gorp's "
             "text cannot hold NUL characters (it would silently cut the string there)",
             path, at, line, col, where);
  }
  const int rc = json_check_unique_keys(path, r);
  if (rc) {
    cJSON_Delete(r);
    return rc;
  }
  *root = r;
  return GORP_OK;
}

int json_read_file(const char *path, const char *what, size_t max_bytes, cJSON **root) {
  char *text;
  size_t len;
  GORP_CALL(fs_read_regular(path, what, max_bytes, &text, &len));
  const int rc = json_parse(path, text, len, root);
  free(text);
  return rc;
}

typedef struct key_scratch {
  const char **keys;
  size_t cap;
  char where[512]; /* $.a.b[3] of the value being checked, cut when very deep */
} key_scratch;

static int cmp_key(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorting the keys makes an object of n keys O(n log n): tokenizer vocabularies hold 10^5. */
static int unique_keys(const char *path, const cJSON *v, key_scratch *ks) {
  if (!cJSON_IsObject(v) && !cJSON_IsArray(v)) return GORP_OK;
  size_t n = 0;
  const cJSON *c;
  if (cJSON_IsObject(v)) {
    cJSON_ArrayForEach(c, v) n++;
    if (n > ks->cap) {
      const char **grown = realloc(ks->keys, n * sizeof(*grown));
      if (!grown) GORP_ERR(GORP_EMEM, "out of memory checking the keys of '%s'", path);
      ks->keys = grown;
      ks->cap = n;
    }
    n = 0;
    cJSON_ArrayForEach(c, v) ks->keys[n++] = c->string;
    qsort(ks->keys, n, sizeof(*ks->keys), cmp_key);
    for (size_t i = 1; i < n; i++)
      if (!strcmp(ks->keys[i - 1], ks->keys[i]))
        GORP_ERR(GORP_EINPUT,
                 "'%s': duplicate key \"%s\" in the object at %s; refused because JSON readers "
                 "disagree on which value counts (Python keeps the last, cJSON the first)",
                 path, ks->keys[i], ks->where);
  }
  const size_t mark = strlen(ks->where);
  long i = 0;
  cJSON_ArrayForEach(c, v) {
    if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
      if (cJSON_IsObject(v))
        snprintf(ks->where + mark, sizeof(ks->where) - mark, ".%s", c->string);
      else
        snprintf(ks->where + mark, sizeof(ks->where) - mark, "[%ld]", i);
      GORP_CALL(unique_keys(path, c, ks));
      ks->where[mark] = '\0';
    }
    i++;
  }
  return GORP_OK;
}

int json_check_unique_keys(const char *path, const cJSON *root) {
  key_scratch ks = {.where = "$"};
  const int rc = unique_keys(path, root, &ks);
  free(ks.keys);
  return rc;
}
