/* Text <-> token ids for the model. One interface for every tokenizer kind; today only the
 * built-in byte-level one (ids 0..255 are the bytes, then BOS, EOS, PAD), which needs no file.
 * Hugging Face tokenizer.json (BPE) is planned behind the same calls.
 * Not for: prompt layout or truncation policy (prompt.h), special-token placement (the caller
 * adds BOS/EOS). */
#ifndef GORP_TOKENIZER_H
#define GORP_TOKENIZER_H

/* kind: 0 is left for a zeroed, unopened struct so that misuse is caught, not silently encoded. */
enum { TOKENIZER_BYTE = 1 };

/* Byte-level layout. */
enum { TOKENIZER_BYTE_BOS = 256, TOKENIZER_BYTE_EOS = 257, TOKENIZER_BYTE_PAD = 258 };

typedef struct tokenizer {
  int vocab_size, bos_id, eos_id, pad_id;
  int kind; /* TOKENIZER_BYTE */
} tokenizer;

/* The byte-level tokenizer: vocab_size 259. */
int tokenizer_init_byte(tokenizer *t);
/* spec "byte" -> byte-level; anything else is GORP_EINPUT naming spec. */
int tokenizer_open(tokenizer *t, const char *spec);
void tokenizer_free(tokenizer *t);

/* Appends the ids of text (no BOS/EOS) to out[*n..] and advances *n; cap is the capacity of out.
 * GORP_EINPUT, with out and *n untouched, when the ids would not fit. out may be NULL to count
 * only: *n advances as if the ids had been written and cap is not checked. */
int tokenizer_encode(const tokenizer *t, const char *text, int *out, int *n, int cap);
/* As tokenizer_encode, but appends only the first max_tokens ids of text's encoding (all of them
 * when there are fewer): truncation by tokens, as the benchmark truncates, without needing room
 * for the whole encoding. max_tokens >= 0. */
int tokenizer_encode_head(const tokenizer *t, const char *text, int max_tokens, int *out, int *n,
                          int cap);
/* Decodes ids, skipping BOS/EOS/PAD, into a malloc'd NUL-terminated string (free() it). The bytes
 * are returned as generated: a model may emit a broken UTF-8 sequence and it is not repaired here.
 * GORP_EINPUT naming the position for an id outside the vocabulary. */
int tokenizer_decode(const tokenizer *t, const int *ids, int n, char **text);

#endif
