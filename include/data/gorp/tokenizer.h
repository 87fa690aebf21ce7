/* Text <-> token ids for the model. One interface for every tokenizer kind:
 *  - the built-in byte-level one (ids 0..255 are the bytes, then BOS, EOS, PAD), which needs no
 *    file;
 *  - a Hugging Face tokenizer.json (tokenizer_bpe.c) with a BPE model (GPT-2's byte-level BPE,
 *    LLaMA's SentencePiece-style BPE with byte fallback) or a WordLevel model. Encoding equals the
 *    `tokenizers` library's `Tokenizer.from_file(path).encode(text, add_special_tokens=False).ids`
 *    (tests/ref/test_tokenizer_vs_hf.py checks it on every text of the mini benchmark).
 * Not for: prompt layout or truncation policy (prompt.h), special-token placement (the caller
 * adds BOS/EOS). */
#ifndef GORP_TOKENIZER_H
#define GORP_TOKENIZER_H

#include <stdint.h>

/* kind: 0 is left for a zeroed, unopened struct so that misuse is caught, not silently encoded.
 * TOKENIZER_BPE and TOKENIZER_WORDLEVEL are tokenizer.json files (by their model type). */
enum { TOKENIZER_BYTE = 1, TOKENIZER_BPE = 2, TOKENIZER_WORDLEVEL = 3 };

/* Byte-level layout. */
enum { TOKENIZER_BYTE_BOS = 256, TOKENIZER_BYTE_EOS = 257, TOKENIZER_BYTE_PAD = 258 };

struct tokenizer_hf; /* tokenizer.json state, private to tokenizer_bpe.c */

/* The most ids a tokenizer's template puts before a text. */
enum { TOKENIZER_MAX_PREPEND = 4 };

/* A model's chat template rendered around one user message and one answer (tokenizer_open_chat):
 *   before + <user message> + after + <answer> + end */
typedef struct tokenizer_chat {
  char *before; /* e.g. "<|im_start|>system\n...<|im_end|>\n<|im_start|>user\n" */
  char *after;  /* e.g. "<|im_end|>\n<|im_start|>assistant\n" (the generation prompt) */
  char *end;    /* e.g. "<|im_end|>": closes the answer's turn (trailing whitespace dropped) */
} tokenizer_chat;

typedef struct tokenizer {
  int vocab_size, bos_id, eos_id, pad_id;
  /* the ids the tokenizer's own template puts before one text: a tokenizer.json's post_processor
   * (LLaMA-2's TemplateProcessing "<s> $A" gives <s>; GPT-2's ByteLevel and a null one give
   * none); the byte-level kind's template is BOS */
  int n_prepend;
  int prepend[TOKENIZER_MAX_PREPEND];
  int kind;                /* TOKENIZER_* */
  struct tokenizer_hf *hf; /* NULL for the byte-level kind */
  tokenizer_chat *chat;    /* NULL: none (tokenizer_open_chat) */
} tokenizer;

/* The byte-level tokenizer: vocab_size 259. */
int tokenizer_init_byte(tokenizer *t);
/* spec "byte" -> byte-level; anything else is the path of a Hugging Face tokenizer.json.
 *
 * What a tokenizer.json may hold (anything else is GORP_EINPUT naming the file and the part):
 *  - model: BPE (merges as "a b" strings or [a, b] pairs; byte_fallback, fuse_unk, unk_token,
 *    ignore_merges, continuing_subword_prefix, end_of_word_suffix; no dropout) or WordLevel.
 *  - normalizer: null, Prepend, Replace (String pattern) or a Sequence of them.
 *  - pre_tokenizer: null, ByteLevel (the GPT-2 split regex when use_regex), Metaspace
 *    (prepend_scheme always/first/never, split), Split (String pattern, or a Regex in the small
 *    subset tokenizer_bpe.c documents: alternation, [classes], \w \s \d \p{L} \p{N}, + * ?),
 *    Whitespace, WhitespaceSplit or a Sequence of them.
 *  - decoder: null (tokens joined by " "), ByteLevel, Replace, ByteFallback, Fuse, Strip,
 *    Metaspace or a Sequence of them. truncation and padding are ignored, and encode adds no
 *    special tokens.
 *  - post_processor: null, ByteLevel, TemplateProcessing, BertProcessing, RobertaProcessing or a
 *    Sequence of them; only the ids its single-text template puts before the text are kept
 *    (n_prepend/prepend: prompt.c starts every sequence with them). What a template puts after the
 *    text is not used: gorp closes an answer itself (prompt.h).
 *  - added_tokens: matched in the text before the model (leftmost-longest, as the library does);
 *    single_word/lstrip/rstrip must be false.
 * The GPT-2 split needs \p{L}, \p{N} and \s: tokenizer_bpe.c has range tables for all of Unicode
 * read off the pinned `tokenizers` (0.22.2, Oniguruma) itself, so they agree with it on every
 * code point (the reference test checks them all), not only on the Unicode version Python knows.
 *
 * Special ids (by token text; added_tokens first, then the model vocabulary):
 *   BOS: "<s>", "<bos>", "[BOS]", "<|begin_of_text|>", "<|endoftext|>"   (first present)
 *   EOS: "</s>", "<eos>", "[EOS]", "<|end_of_text|>", "<|endoftext|>"
 *   PAD: "<pad>", "[PAD]", "<unk>", "[UNK]", else the EOS id.
 * So LLaMA-2 gets <s>=1, </s>=2 and PAD=<unk>=0 (it has no pad token; id 0 is what LLaMA
 * fine-tuning code conventionally pads with, and padded positions are masked anyway); GPT-2 gets
 * <|endoftext|>=50256 as BOS, EOS and PAD. A file with no BOS or EOS candidate is GORP_EINPUT.
 * vocab_size is the largest id of the model vocabulary and added tokens, plus one (the model
 * vocabulary plus the added tokens not in it, for the usual dense files). */
int tokenizer_open(tokenizer *t, const char *spec);
/* Attaches a rendered chat template to an open tokenizer: path is a JSON object with the strings
 * "before", "after" and "end" (tokenizer_chat; scripts/chat_template.py renders a model's own
 * template into one). GORP_EINPUT naming the file and the key for anything else, and when "end"
 * is empty once its trailing whitespace is dropped (an answer must be closed). */
int tokenizer_open_chat(tokenizer *t, const char *path);
void tokenizer_free(tokenizer *t);

/* Appends the ids of text (no BOS/EOS) to out[*n..] and advances *n; cap is the capacity of out.
 * GORP_EINPUT, with out and *n untouched, when the ids would not fit. out may be NULL to count
 * only: *n advances as if the ids had been written and cap is not checked.
 * A tokenizer.json tokenizer encodes text as one whole: for LLaMA's files every call starts with
 * "▁" (SentencePiece's dummy prefix), so encode(a) + encode(b) is not encode(a + b) (see
 * tokenizer_encode_cont). Not safe to call on one tokenizer from several threads at once (a word
 * cache is filled as it goes). */
int tokenizer_encode(const tokenizer *t, const char *text, int *out, int *n, int cap);
/* As tokenizer_encode, but appends only the first max_tokens ids of text's encoding (all of them
 * when there are fewer): truncation by tokens, as the benchmark truncates, without needing room
 * for the whole encoding. max_tokens >= 0. */
int tokenizer_encode_head(const tokenizer *t, const char *text, int max_tokens, int *out, int *n,
                          int cap);
/* As tokenizer_encode_head (max_tokens < 0: all ids), but encodes text as the continuation of
 * text encoded before it, for building one sequence from separately encoded parts: no dummy
 * prefix ("▁" of a Prepend normalizer, ByteLevel's add_prefix_space) at its start, and a
 * Metaspace pre-tokenizer with prepend_scheme "first" does not count it as the start. An added
 * token inside text still starts a fresh gap, as in the whole string. For the byte-level kind and
 * GPT-2 this is tokenizer_encode_head. encode(a) + encode_cont(b) + encode_cont(c) equals
 * encode(a + b + c) only when no BPE merge spans a boundary, so the benchmark prompt is encoded
 * whole (prompt.c); gorp pretrain's synthetic sequences (a WordLevel file split at spaces) use
 * this. */
int tokenizer_encode_cont(const tokenizer *t, const char *text, int max_tokens, int *out, int *n,
                          int cap);
/* Decodes ids, skipping BOS/EOS/PAD (and a tokenizer.json's added tokens marked special), into a
 * malloc'd NUL-terminated string (free() it), through the file's decoder. The bytes are returned
 * as generated: a model may emit a broken UTF-8 sequence and it is not repaired here (the
 * `tokenizers` library would put U+FFFD there). GORP_EINPUT naming the position for an id outside
 * the vocabulary. */
int tokenizer_decode(const tokenizer *t, const int *ids, int n, char **text);

/* Character classes, for tests: in the low two bits the GPT-2 split class (1 \p{L}, 2 \p{N},
 * 3 \s, 0 anything else, including surrogates and values past U+10FFFF), plus TOKENIZER_CP_WORD
 * when cp is in \w and TOKENIZER_CP_DIGIT when in \d (of Split regexes), all as Oniguruma in the
 * pinned `tokenizers` has them. */
enum { TOKENIZER_CP_WORD = 4, TOKENIZER_CP_DIGIT = 8 };
int tokenizer_codepoint_class(uint32_t cp);

/* tokenizer_bpe.c, called through the functions above (not for other callers). */
int tokenizer_hf_open(tokenizer *t, const char *path);
void tokenizer_hf_free(struct tokenizer_hf *h);
void tokenizer_chat_free(tokenizer_chat *c);
/* Encodes all of text into a malloc'd array (*ids, *n; *ids may be NULL when *n is 0); cont: as
 * tokenizer_encode_cont. */
int tokenizer_hf_encode(const tokenizer *t, const char *text, int cont, int **ids, int *n);
int tokenizer_hf_decode(const tokenizer *t, const int *ids, int n, char **text);

#endif
