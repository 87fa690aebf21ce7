/* UTF-8 well-formedness checks (see utf8.h). */
#include "gorp/utf8.h"

size_t utf8_seq_len(const unsigned char *s, size_t avail) {
  const unsigned c = s[0];
  size_t len;
  unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0; /* overlong */
    if (c == 0xED) hi = 0x9F; /* UTF-16 surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90; /* overlong */
    if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
  } else {
    return 0;
  }
  if (avail < len || s[1] < lo || s[1] > hi) return 0;
  for (size_t k = 2; k < len; k++)
    if (s[k] < 0x80 || s[k] > 0xBF) return 0;
  return len;
}

size_t utf8_first_invalid(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    const size_t len = utf8_seq_len(s + i, n - i);
    if (!len) return i;
    i += len;
  }
  return n;
}
