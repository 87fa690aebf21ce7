/* A model's chat template, rendered (see tokenizer.h, tokenizer_open_chat): three strings read
 * from a small JSON file. gorp has no Jinja engine; the file is rendered once from the model's
 * own template by scripts/chat_template.py (transformers' apply_chat_template, the reference),
 * and prompt.c wraps every benchmark prompt in it.
 * Not for: placing the strings around a prompt (prompt.c), special ids (tokenizer.c). */
#include "gorp/tokenizer.h"

#include "gorp/err.h"
#include "gorp/fsutil.h"
#include "gorp/jsonutil.h"

#include <stdlib.h>
#include <string.h>

void tokenizer_chat_free(tokenizer_chat *c) {
  if (!c) return;
  free(c->before);
  free(c->after);
  free(c->end);
  free(c);
}

static int chat_string(const char *path, const cJSON *root, const char *key, char **out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
  if (!cJSON_IsString(v))
    GORP_ERR(GORP_EINPUT, "chat template '%s': key \"%s\" must be a string", path, key);
  *out = strdup(v->valuestring);
  if (!*out) GORP_ERR(GORP_EMEM, "out of memory reading chat template '%s'", path);
  return GORP_OK;
}

static int chat_read(const char *path, const cJSON *root, tokenizer_chat *c) {
  if (!cJSON_IsObject(root))
    GORP_ERR(GORP_EINPUT, "chat template '%s': expected a JSON object with before/after/end", path);
  const cJSON *k;
  cJSON_ArrayForEach(k, root) if (strcmp(k->string, "before") && strcmp(k->string, "after") &&
                                  strcmp(k->string, "end") && strcmp(k->string, "source"))
      GORP_ERR(GORP_EINPUT,
               "chat template '%s': unknown key \"%s\" (expected before, after, end, source)", path,
               k->string);
  GORP_CALL(chat_string(path, root, "before", &c->before));
  GORP_CALL(chat_string(path, root, "after", &c->after));
  GORP_CALL(chat_string(path, root, "end", &c->end));
  /* the answer's turn ends at the closing token; a newline after it is never generated */
  size_t n = strlen(c->end);
  while (n && strchr(" \t\r\n", c->end[n - 1])) c->end[--n] = '\0';
  if (!n)
    GORP_ERR(GORP_EINPUT, "chat template '%s': \"end\" is empty; it must close the answer's turn",
             path);
  return GORP_OK;
}

int tokenizer_open_chat(tokenizer *t, const char *path) {
  cJSON *root;
  GORP_CALL(json_read_file(path, "chat template", FS_MAX_CONFIG, &root));
  tokenizer_chat *c = calloc(1, sizeof *c);
  int ierr = c ? chat_read(path, root, c) : GORP_ERROR(GORP_EMEM, "out of memory");
  cJSON_Delete(root);
  if (ierr) {
    tokenizer_chat_free(c);
    return ierr;
  }
  tokenizer_chat_free(t->chat);
  t->chat = c;
  return GORP_OK;
}
