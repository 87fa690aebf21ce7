/* Answer normalisation and matching (see metrics.h).
 *
 * Upstream (O-LoRA / GORP compute_metrics.py, "adapted from Squad v1.1 evaluation, without removing
 * the articles"):
 *     white_space_fix(remove_punc(lower(s)))
 *     lower: str.lower(); remove_punc: drop every char of string.punctuation;
 *     white_space_fix: ' '.join(text.split())
 * so "Science or Technology" -> "science or technology", "World." -> "world",
 * "  very   negative\t" -> "very negative", "a - b" -> "a b" (the space runs meet once the dash
 * is gone), and "" -> "".
 * Python works on Unicode code points; we work on bytes and touch only ASCII: upper-case letters
 * A-Z, the 32 punctuation characters, and the ASCII characters str.split() treats as white space
 * (\t \n \v \f \r space and \x1c-\x1f). Other bytes pass through unchanged, so a non-ASCII
 * upper-case letter or a non-ASCII space (U+00A0, U+3000) is compared as is where Python would fold
 * it. Every benchmark label is ASCII, so scores agree with upstream except for such predictions. */
#include "gorp/metrics.h"

#include "gorp/err.h"

#include <stdlib.h>
#include <string.h>

static int is_punct(unsigned char c) {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
         (c >= 123 && c <= 126);
}

static int is_space(unsigned char c) {
  return c == ' ' || (c >= 9 && c <= 13) || (c >= 28 && c <= 31);
}

/* Streams the normalised form of a string one byte at a time, so that comparisons allocate
 * nothing and cannot fail. */
typedef struct norm_iter {
  const unsigned char *p;
  int started; /* a kept byte has been emitted: later white space may become one separator */
  int pending; /* white space seen since the last kept byte */
} norm_iter;

/* Next byte of the normalised string, or 0 at its end (a trailing separator is dropped). */
static unsigned char norm_next(norm_iter *it) {
  for (;;) {
    unsigned char c = *it->p;
    if (!c) return 0;
    if (is_punct(c)) {
      it->p++;
    } else if (is_space(c)) {
      it->p++;
      it->pending = it->started;
    } else if (it->pending) {
      it->pending = 0;
      return ' '; /* c is emitted by the next call */
    } else {
      it->p++;
      it->started = 1;
      return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
    }
  }
}

int metrics_normalize(const char *s, char **out) {
  char *r;
  GORP_ALLOC(r, strlen(s) + 1, "normalised answer");
  norm_iter it = {(const unsigned char *)s, 0, 0};
  size_t len = 0;
  for (unsigned char c; (c = norm_next(&it));) r[len++] = (char)c;
  r[len] = '\0';
  *out = r;
  return GORP_OK;
}

int metrics_exact_match(const char *prediction, const char *label) {
  norm_iter a = {(const unsigned char *)prediction, 0, 0};
  norm_iter b = {(const unsigned char *)label, 0, 0};
  for (;;) {
    unsigned char ca = norm_next(&a), cb = norm_next(&b);
    if (ca != cb) return 0;
    if (!ca) return 1;
  }
}

int metrics_in_list(const char *prediction, char *const *labels, int n_labels) {
  for (int i = 0; i < n_labels; i++)
    if (metrics_exact_match(prediction, labels[i])) return 1;
  return 0;
}
