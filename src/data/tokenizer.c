/* Tokenizers (see tokenizer.h). The byte-level kind maps each byte of the UTF-8 text to its own
 * id, so encode/decode round-trip any byte string exactly and need no vocabulary file. The
 * tokenizer.json kinds live in tokenizer_bpe.c; this file dispatches to them. */
#include "gorp/tokenizer.h"

#include "gorp/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int tokenizer_init_byte(tokenizer *t) {
  *t = (tokenizer){.vocab_size = 259,
                   .bos_id = TOKENIZER_BYTE_BOS,
                   .eos_id = TOKENIZER_BYTE_EOS,
                   .pad_id = TOKENIZER_BYTE_PAD,
                   .n_prepend = 1,
                   .prepend = {TOKENIZER_BYTE_BOS},
                   .kind = TOKENIZER_BYTE};
  return GORP_OK;
}

int tokenizer_open(tokenizer *t, const char *spec) {
  if (!spec || !*spec)
    GORP_ERR(GORP_EINPUT, "tokenizer: expected 'byte' or the path of a tokenizer.json, got '%s'",
             spec ? spec : "(null)");
  if (!strcmp(spec, "byte")) return tokenizer_init_byte(t);
  GORP_CALL(tokenizer_hf_open(t, spec));
  return GORP_OK;
}

void tokenizer_free(tokenizer *t) {
  if (t->hf) tokenizer_hf_free(t->hf);
  tokenizer_chat_free(t->chat);
  *t = (tokenizer){0};
}

static int check_open(const tokenizer *t) {
  int hf = (t->kind == TOKENIZER_BPE || t->kind == TOKENIZER_WORDLEVEL) && t->hf;
  if (t->kind != TOKENIZER_BYTE && !hf)
    GORP_ERR(GORP_EINPUT, "tokenizer used before tokenizer_open/tokenizer_init_byte (kind %d)",
             t->kind);
  return GORP_OK;
}

/* Appends ids[0..count) (or only counts when out is NULL), checking the capacity first. */
static int append_ids(const int *ids, size_t count, int *out, int *n, int cap) {
  if (out && count > (size_t)(cap - *n))
    GORP_ERR(GORP_EINPUT, "tokenizer: %zu more tokens do not fit (%d of capacity %d already used)",
             count, *n, cap);
  if (out && count) memcpy(out + *n, ids, count * sizeof(int));
  *n += (int)count;
  return GORP_OK;
}

/* Appends the byte ids of text, at most max of them. */
static int encode_bytes(const char *text, size_t max, int *out, int *n, int cap) {
  size_t len = strlen(text);
  size_t count = len < max ? len : max;
  if (out && count > (size_t)(cap - *n))
    GORP_ERR(GORP_EINPUT, "tokenizer: %zu more tokens do not fit (%d of capacity %d already used)",
             count, *n, cap);
  const unsigned char *b = (const unsigned char *)text;
  if (out)
    for (size_t i = 0; i < count; i++) out[*n + i] = b[i];
  *n += (int)count;
  return GORP_OK;
}

/* Encodes text (as a continuation when cont) and appends at most max of its ids. */
static int encode_any(const tokenizer *t, const char *text, int cont, size_t max, int *out, int *n,
                      int cap) {
  GORP_CALL(check_open(t));
  if (t->kind == TOKENIZER_BYTE) {
    GORP_CALL(encode_bytes(text, max, out, n, cap));
    return GORP_OK;
  }
  int *ids = NULL, count = 0;
  GORP_CALL(tokenizer_hf_encode(t, text, cont, &ids, &count));
  int ierr = append_ids(ids, (size_t)count < max ? (size_t)count : max, out, n, cap);
  free(ids);
  return ierr;
}

int tokenizer_encode(const tokenizer *t, const char *text, int *out, int *n, int cap) {
  GORP_CALL(encode_any(t, text, 0, SIZE_MAX, out, n, cap));
  return GORP_OK;
}

int tokenizer_encode_head(const tokenizer *t, const char *text, int max_tokens, int *out, int *n,
                          int cap) {
  if (max_tokens < 0)
    GORP_ERR(GORP_EINPUT, "tokenizer: max_tokens must be >= 0, got %d", max_tokens);
  GORP_CALL(encode_any(t, text, 0, (size_t)max_tokens, out, n, cap));
  return GORP_OK;
}

int tokenizer_encode_cont(const tokenizer *t, const char *text, int max_tokens, int *out, int *n,
                          int cap) {
  GORP_CALL(encode_any(t, text, 1, max_tokens < 0 ? SIZE_MAX : (size_t)max_tokens, out, n, cap));
  return GORP_OK;
}

int tokenizer_decode(const tokenizer *t, const int *ids, int n, char **text) {
  GORP_CALL(check_open(t));
  for (int i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= t->vocab_size)
      GORP_ERR(GORP_EINPUT, "tokenizer: id %d at position %d is outside the vocabulary [0, %d)",
               ids[i], i, t->vocab_size);
  if (t->kind != TOKENIZER_BYTE) {
    GORP_CALL(tokenizer_hf_decode(t, ids, n, text));
    return GORP_OK;
  }
  char *s;
  GORP_ALLOC(s, (size_t)n + 1, "decoded text");
  int len = 0;
  for (int i = 0; i < n; i++)
    if (ids[i] < 256) s[len++] = (char)ids[i];
  s[len] = '\0';
  *text = s;
  return GORP_OK;
}
