/* UTF-8 well-formedness (RFC 3629: shortest form, no surrogates, nothing above U+10FFFF), shared
 * by the data loader (which refuses bad input) and the evaluator (which repairs generated text).
 * Not for: Unicode classes or normalisation. */
#ifndef GORP_UTF8_H
#define GORP_UTF8_H

#include <stddef.h>

/* Length (1-4) of the well-formed sequence starting at s (avail bytes readable), or 0. */
size_t utf8_seq_len(const unsigned char *s, size_t avail);
/* Offset of the first byte that does not start a well-formed sequence, or n when all are. */
size_t utf8_first_invalid(const unsigned char *s, size_t n);

#endif
