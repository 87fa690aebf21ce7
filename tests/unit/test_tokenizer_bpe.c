/* Unit tests of the Hugging Face tokenizer.json tokenizers (tokenizer_bpe.c): GPT-2's real file
 * with ids checked by hand against the `tokenizers` library, small hand-written files for the
 * SentencePiece-style BPE (dummy prefix, byte fallback, merges by rank) and WordLevel with a Split
 * regex, the Unicode classes of the GPT-2 split, and load errors. With GORP_LLAMA_TOKENIZER set
 * (tests/ref/test_tokenizer_vs_hf.py sets it) it also checks LLaMA-2's converted file.
 *
 * Driver mode, for tests/ref/test_tokenizer_vs_hf.py: with GORP_TOK_CASES=<cases.json> and
 * GORP_TOK_OUT=<prefix> it runs the checks above, then reads
 *   {"tokenizers": {"<name>": "<tokenizer.json>", ...}, "texts": ["...", ...],
 *    "items": [["prefix", "sentence", "suffix", "label"], ...],      (optional)
 *    "chat": {"<name>": "<rendered chat template .json>", ...}}     (optional)
 * and writes, per tokenizer, <prefix>.<name>.ids (one line per text: the ids, space-separated),
 * <prefix>.<name>.dec (one line per text: decode(encode(text)) as a JSON string),
 * <prefix>.<name>.eval and .train (one line per item: prompt_parts_encode's evaluation input and
 * training sequence), the same as <prefix>.<name>.chat.eval/.train inside the chat template
 * where one is named, and
 * <prefix>.classes (tokenizer_codepoint_class of U+0000..U+10FFFF, one hex digit each). It
 * prints the encoding time of each tokenizer.
 * Not for: agreement with the library on real text (the reference test does that). No MPI. */
#include "testutil.h"
#include "gorp/err.h"
#include "gorp/proc.h"
#include "gorp/prompt.h"
#include "gorp/tokenizer.h"

#include <cjson/cJSON.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char data_dir[PATH_MAX], tmp_dir[PATH_MAX];

static void setup_dirs(void) {
  const char *env = getenv("GORP_DATA"), *src = getenv("GORP_SRC"), *tmp = getenv("TMPDIR");
  if (env && env[0])
    snprintf(data_dir, sizeof data_dir, "%s", env);
  else if (src && src[0])
    snprintf(data_dir, sizeof data_dir, "%s/../shared/data", src);
  else
    snprintf(data_dir, sizeof data_dir, "../shared/data");
  snprintf(tmp_dir, sizeof tmp_dir, "%s/gorp_test_tok_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
  if (!mkdtemp(tmp_dir)) {
    perror("test_tokenizer_bpe: mkdtemp");
    exit(2);
  }
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(text, 1, strlen(text), f) != strlen(text) || fclose(f)) {
    fprintf(stderr, "test_tokenizer_bpe: cannot write %s\n", path);
    exit(2);
  }
}

/* Encodes text and compares with the expected ids (count n). */
static int encodes_to(const tokenizer *t, const char *text, const int *want, int n) {
  int ids[256], got = 0;
  if (tokenizer_encode(t, text, ids, &got, 256)) {
    printf("  encode failed for [%s]\n", text);
    return 0;
  }
  int ok = got == n && !memcmp(ids, want, (size_t)n * sizeof(int));
  if (!ok) {
    printf("  [%s] ->", text);
    for (int i = 0; i < got; i++) printf(" %d", ids[i]);
    printf("\n  expected:");
    for (int i = 0; i < n; i++) printf(" %d", want[i]);
    printf("\n");
  }
  return ok;
}

/* tokenizer_encode_cont(text) compares with the expected ids. */
static int cont_encodes_to(const tokenizer *t, const char *text, const int *want, int n) {
  int ids[256], got = 0;
  if (tokenizer_encode_cont(t, text, -1, ids, &got, 256)) return 0;
  int ok = got == n && !memcmp(ids, want, (size_t)n * sizeof(int));
  if (!ok) {
    printf("  cont [%s] ->", text);
    for (int i = 0; i < got; i++) printf(" %d", ids[i]);
    printf("\n");
  }
  return ok;
}

#define CONT(t, text, ...)                                                                         \
  do {                                                                                             \
    const int want_[] = {__VA_ARGS__};                                                             \
    CHECK(cont_encodes_to(t, text, want_, (int)(sizeof want_ / sizeof want_[0])), "cont %s",       \
          text);                                                                                   \
  } while (0)

#define ENC(t, text, ...)                                                                          \
  do {                                                                                             \
    const int want_[] = {__VA_ARGS__};                                                             \
    CHECK(encodes_to(t, text, want_, (int)(sizeof want_ / sizeof want_[0])), "%s", text);          \
  } while (0)

/* decode(encode(text)) == expected */
static int round_trips(const tokenizer *t, const char *text, const char *expected) {
  int ids[512], n = 0;
  char *s = NULL;
  int ok = !tokenizer_encode(t, text, ids, &n, 512) && !tokenizer_decode(t, ids, n, &s) &&
           !strcmp(s, expected);
  if (!ok) printf("  [%s] decoded as [%s]\n", text, s ? s : "(error)");
  free(s);
  return ok;
}

static void test_gpt2_hand_checked_ids(void) {
  char path[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/tokenizers/gpt2/tokenizer.json", data_dir);
  tokenizer t;
  int ierr = tokenizer_open(&t, path);
  CHECK(!ierr, "opening %s", path);
  if (ierr) return;
  CHECK(t.kind == TOKENIZER_BPE, "kind %d", t.kind);
  CHECK(t.vocab_size == 50257, "vocab_size %d", t.vocab_size);
  CHECK(t.bos_id == 50256 && t.eos_id == 50256 && t.pad_id == 50256, "specials %d %d %d", t.bos_id,
        t.eos_id, t.pad_id);
  /* ids from tokenizers 0.22.2: Tokenizer.from_file(...).encode(text, add_special_tokens=False) */
  ENC(&t, "Hello world", 15496, 995);
  ENC(&t, " 's", 705, 82);   /* " '" is one ` ?[^\s\p{L}\p{N}]+` piece, then "s" */
  ENC(&t, "it's", 270, 338); /* contraction */
  ENC(&t, "12345 67", 10163, 2231, 8275);
  ENC(&t, "h\xc3\xa9llo w\xc3\xb6rld", 71, 2634, 18798, 266, 30570, 335);
  ENC(&t, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 33768, 98, 17312, 105, 45739, 252); /* 日本語 */
  ENC(&t, "\xf0\x9f\x98\x80", 47249, 222);                                            /* emoji */
  ENC(&t, "a  \n b", 64, 220, 220, 198, 275); /* \s+(?!\S) leaves the last space to " b" */
  ENC(&t, "x<|endoftext|>y", 87, 50256, 88);  /* added token cut out of the text */
  ENC(&t, "Answer: positive", 33706, 25, 3967);
  CONT(&t, " positive", 3967); /* GPT-2 adds no prefix: continuation is plain encoding */
  int n = 0;
  CHECK(!tokenizer_encode(&t, "", NULL, &n, 0) && n == 0, "empty text gives %d ids", n);
  const char *texts[] = {"Hello world", " 's", "h\xc3\xa9llo  w\xc3\xb6rld\n\n",
                         "\xf0\x9f\x98\x80!", "\ttabs\tand   spaces  "};
  for (int i = 0; i < 5; i++) CHECK(round_trips(&t, texts[i], texts[i]), "%s", texts[i]);
  CHECK(round_trips(&t, "x<|endoftext|>y", "xy"), "decode skips <|endoftext|>");
  int head[4], m = 0;
  CHECK(!tokenizer_encode_head(&t, "Hello world foo bar", 2, head, &m, 4) && m == 2 &&
            head[0] == 15496 && head[1] == 995,
        "encode_head keeps the first 2 ids (got %d)", m);
  m = 3;
  CHECK(tokenizer_encode(&t, "Hello world", head, &m, 4) == GORP_EINPUT && m == 3,
        "too small a buffer is refused, untouched");
  int bad = 50257;
  char *s = NULL;
  CHECK(tokenizer_decode(&t, &bad, 1, &s) == GORP_EINPUT, "id past the vocabulary");
  tokenizer_free(&t);
}

/* A SentencePiece-style file in miniature: ids 0-2 specials, 3..258 the byte tokens <0xNN>. */
static void write_sp_json(const char *path) {
  char *buf = malloc(65536);
  int w =
      sprintf(buf, "{\"version\":\"1.0\",\"added_tokens\":["
                   "{\"id\":0,\"content\":\"<unk>\",\"special\":true,\"normalized\":false},"
                   "{\"id\":1,\"content\":\"<s>\",\"special\":true,\"normalized\":false},"
                   "{\"id\":2,\"content\":\"</s>\",\"special\":true,\"normalized\":false}],"
                   "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":["
                   "{\"type\":\"Prepend\",\"prepend\":\"\\u2581\"},"
                   "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},"
                   "\"content\":\"\\u2581\"}]},"
                   "\"pre_tokenizer\":null,\"post_processor\":null,"
                   "\"decoder\":{\"type\":\"Sequence\",\"decoders\":["
                   "{\"type\":\"Replace\",\"pattern\":{\"String\":\"\\u2581\"},\"content\":\" \"},"
                   "{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},"
                   "{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]},"
                   "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":\"<unk>\","
                   "\"fuse_unk\":true,\"byte_fallback\":true,\"vocab\":{"
                   "\"<unk>\":0,\"<s>\":1,\"</s>\":2");
  for (int b = 0; b < 256; b++) w += sprintf(buf + w, ",\"<0x%02X>\":%d", b, 3 + b);
  sprintf(buf + w, ",\"\\u2581\":259,\"a\":260,\"b\":261,\"\\u2581a\":262,\"ab\":263,"
                   "\"\\u2581ab\":264,\"c\":265},"
                   "\"merges\":[[\"\\u2581\",\"a\"],[\"a\",\"b\"],[\"\\u2581a\",\"b\"]]}}");
  write_file(path, buf);
  free(buf);
}

static void test_sentencepiece_style_bpe(void) {
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/sp.json", tmp_dir);
  write_sp_json(path);
  tokenizer t;
  int ierr = tokenizer_open(&t, path);
  CHECK(!ierr, "opening the hand-written SentencePiece-style file");
  if (ierr) return;
  CHECK(t.vocab_size == 266 && t.bos_id == 1 && t.eos_id == 2 && t.pad_id == 0,
        "vocab %d bos %d eos %d pad %d (pad falls back to <unk>)", t.vocab_size, t.bos_id, t.eos_id,
        t.pad_id);
  /* "ab" -> "▁ab": (▁,a) rank 0 first, then (▁a,b) rank 2; (a,b) rank 1 never gets its turn */
  ENC(&t, "ab", 264);
  /* a leading space becomes a second ▁: "▁▁ab" -> ▁ + ▁ab */
  ENC(&t, " ab", 259, 264);
  /* "ba": no merge applies; "▁b" is not a token */
  ENC(&t, "ba", 259, 261, 260);
  /* é is not in the vocabulary: byte fallback to <0xC3> <0xA9> */
  ENC(&t, "\xc3\xa9", 259, 3 + 0xC3, 3 + 0xA9);
  /* every separately encoded text gets its own ▁, also after an added token */
  ENC(&t, "a</s>ab", 262, 2, 264);
  /* a continuation gets no ▁ of its own, except after an added token inside it */
  CONT(&t, "ab", 263);
  CONT(&t, " ab", 264);
  CONT(&t, "ab</s>ab", 263, 2, 264);
  int none = 0;
  CHECK(!tokenizer_encode(&t, "", NULL, &none, 0) && none == 0, "empty text: %d ids", none);
  CHECK(round_trips(&t, "ab ab", "ab ab"), "Strip removes only the prepended space");
  CHECK(round_trips(&t, " ab", " ab"), "a leading space survives");
  CHECK(round_trips(&t,
                    "\xc3\xa9"
                    "ab",
                    "\xc3\xa9"
                    "ab"),
        "byte fallback decodes to UTF-8");
  tokenizer_free(&t);
}

static void test_wordlevel_split_regex(void) {
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/wl.json", tmp_dir);
  write_file(path,
             "{\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"special\":true},"
             "{\"id\":1,\"content\":\"<s>\",\"special\":true},"
             "{\"id\":2,\"content\":\"</s>\",\"special\":true},"
             "{\"id\":3,\"content\":\"<pad>\",\"special\":true}],"
             "\"normalizer\":null,"
             "\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\w+|[^\\\\w\\\\s]|"
             "\\\\n\"},"
             "\"behavior\":\"Removed\",\"invert\":true},"
             "\"decoder\":null,"
             "\"model\":{\"type\":\"WordLevel\",\"unk_token\":\"<unk>\",\"vocab\":{\"<unk>\":0,"
             "\"<s>\":1,\"</s>\":2,\"<pad>\":3,\"hello\":4,\"world\":5,\",\":6,\"\\n\":7,"
             "\"Option\":8,\":\":9}}}");
  tokenizer t;
  int ierr = tokenizer_open(&t, path);
  CHECK(!ierr, "opening the hand-written WordLevel file");
  if (ierr) return;
  CHECK(t.kind == TOKENIZER_WORDLEVEL && t.vocab_size == 10 && t.pad_id == 3, "kind %d vocab %d",
        t.kind, t.vocab_size);
  ENC(&t, "hello, world\nfoo", 4, 6, 5, 7, 0);
  ENC(&t, "Option:  hello!!", 8, 9, 4, 0, 0);
  int ids[] = {4, 6, 0, 5};
  char *s = NULL;
  CHECK(!tokenizer_decode(&t, ids, 4, &s) && !strcmp(s, "hello , world"),
        "no decoder: tokens joined by spaces, <unk> skipped (got [%s])", s ? s : "");
  free(s);
  tokenizer_free(&t);
}

static void test_llama2_converted_file(void) {
  const char *path = getenv("GORP_LLAMA_TOKENIZER");
  if (!path || !path[0]) {
    printf("skip: LLaMA-2 checks (GORP_LLAMA_TOKENIZER unset; the reference test sets it)\n");
    return;
  }
  tokenizer t;
  int ierr = tokenizer_open(&t, path);
  CHECK(!ierr, "opening %s", path);
  if (ierr) return;
  CHECK(t.vocab_size == 32000 && t.bos_id == 1 && t.eos_id == 2 && t.pad_id == 0,
        "vocab %d bos %d eos %d pad %d", t.vocab_size, t.bos_id, t.eos_id, t.pad_id);
  ENC(&t, "Hello world", 15043, 3186);
  ENC(&t, " Hello", 29871, 15043); /* "▁▁Hello": a lone ▁, then ▁Hello */
  ENC(&t, " positive", 29871, 6374);
  ENC(&t, "Answer: positive", 673, 29901, 6374);
  ENC(&t, "\xf0\x9f\x98\x80", 29871, 243, 162, 155, 131); /* emoji: <0xF0><0x9F><0x98><0x80> */
  ENC(&t, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 29871, 30325, 30346, 30968); /* 日本語 */
  ENC(&t, "a\n\nb", 263, 13, 13, 29890);                                       /* \n is <0x0A> */
  ENC(&t, "<s>a</s>b", 1, 263, 2, 289);
  /* prompt.c's parts: "...Answer:" + " positive" is ':' '▁positive' in the whole string */
  CONT(&t, " positive", 6374);
  CONT(&t, "\nAnswer:", 13, 22550, 29901);
  int head[2], m = 0;
  CHECK(!tokenizer_encode_cont(&t, "\nAnswer:", 2, head, &m, 2) && m == 2 && head[1] == 22550,
        "encode_cont keeps the first max_tokens ids");
  const char *texts[] = {"Hello world", " Hello", "a\n\nb  c ", "\xf0\x9f\x98\x80 \xe6\x97\xa5"};
  for (int i = 0; i < 4; i++) CHECK(round_trips(&t, texts[i], texts[i]), "%s", texts[i]);
  tokenizer_free(&t);
}

static void test_codepoint_classes(void) {
  enum { W = TOKENIZER_CP_WORD, D = TOKENIZER_CP_DIGIT };
  struct {
    uint32_t cp;
    int cls;
  } cases[] = {{'a', 1 | W},  {'Z', 1 | W},     {'5', 2 | W | D},   {' ', 3},      {'\n', 3},
               {0x1C, 0},     {'!', 0},         {'_', W},           {0xE9, 1 | W}, {0xA0, 3},
               {0xB2, 2 | W}, {0x4E00, 1 | W},  {0x661, 2 | W | D}, {0x3000, 3},   {0x2028, 3},
               {0x1F600, 0},  {0x10400, 1 | W}, {0xD800, 0},        {0x110000, 0}, {0x2581, 0},
               {0x301, W},    {0x2C8, 1 | W}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    CHECK(tokenizer_codepoint_class(cases[i].cp) == cases[i].cls, "U+%04X: %d, expected %d",
          (unsigned)cases[i].cp, tokenizer_codepoint_class(cases[i].cp), cases[i].cls);
}

static void test_load_errors(void) {
  char path[PATH_MAX + 32];
  tokenizer t;
  CHECK(tokenizer_open(&t, "/nonexistent/tokenizer.json") == GORP_EINPUT, "missing file");
  CHECK(tokenizer_open(&t, "") == GORP_EINPUT, "empty spec");
  snprintf(path, sizeof path, "%s/bad.json", tmp_dir);
  write_file(path, "{\"model\": {\"type\": \"BPE\"");
  CHECK(tokenizer_open(&t, path) == GORP_EINPUT, "truncated JSON");
  write_file(path, "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}");
  CHECK(tokenizer_open(&t, path) == GORP_EINPUT, "Unigram is refused");
  write_file(path, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"</s>\": 1, \"<s>\": 2},"
                   "\"merges\": [\"a b\"]}}");
  CHECK(tokenizer_open(&t, path) == GORP_EINPUT, "merge naming a missing token");
  write_file(path, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}");
  CHECK(tokenizer_open(&t, path) == GORP_EINPUT, "no BOS/EOS token");
  write_file(path, "{\"normalizer\": {\"type\": \"NFKC\"}, \"model\": {\"type\": \"BPE\", "
                   "\"vocab\": {\"<s>\": 0, \"</s>\": 1}, \"merges\": []}}");
  CHECK(tokenizer_open(&t, path) == GORP_EINPUT, "unsupported normalizer");
  write_file(path, "{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(a)\"}, "
                   "\"behavior\": \"Isolated\"}, \"model\": {\"type\": \"BPE\", "
                   "\"vocab\": {\"<s>\": 0, \"</s>\": 1}, \"merges\": []}}");
  CHECK(tokenizer_open(&t, path) == GORP_EINPUT, "regex groups are refused");
}

/* The ids a file's post_processor puts before a text (tokenizer.h), and the rendered chat
 * template's file: what is read, and what is refused. */
static void test_template_and_chat(void) {
  char path[PATH_MAX + 32], chat[PATH_MAX + 32], text[2048];
  snprintf(path, sizeof path, "%s/post.json", tmp_dir);
  snprintf(chat, sizeof chat, "%s/t.chat.json", tmp_dir);
  static const char model[] = "\"model\": {\"type\": \"BPE\", \"vocab\": {\"<s>\": 0, \"</s>\": 1, "
                              "\"[CLS]\": 2, \"a\": 3}, \"merges\": []}";
  static const struct {
    const char *post;
    int n, ids[2]; /* n < 0: refused */
  } cases[] = {
      {"null", 0, {0}},
      {"{\"type\": \"ByteLevel\"}", 0, {0}},
      {"{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\"}}, "
       "{\"Sequence\": {\"id\": \"A\"}}, {\"SpecialToken\": {\"id\": \"</s>\"}}], "
       "\"special_tokens\": {\"<s>\": {\"ids\": [0]}, \"</s>\": {\"ids\": [1]}}}",
       1,
       {0}},
      {"{\"type\": \"Sequence\", \"processors\": [{\"type\": \"ByteLevel\"}, {\"type\": "
       "\"BertProcessing\", \"cls\": [\"[CLS]\", 2], \"sep\": [\"</s>\", 1]}]}",
       1,
       {2}},
      {"{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\"}}, "
       "{\"SpecialToken\": {\"id\": \"[CLS]\"}}, {\"Sequence\": {\"id\": \"A\"}}], "
       "\"special_tokens\": {\"<s>\": {\"ids\": [0]}, \"[CLS]\": {\"ids\": [2]}}}",
       2,
       {0, 2}},
      /* a special token the map does not list, an id past the vocabulary, no $A, unknown type */
      {"{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<x>\"}}, "
       "{\"Sequence\": {\"id\": \"A\"}}], \"special_tokens\": {}}",
       -1,
       {0}},
      {"{\"type\": \"BertProcessing\", \"cls\": [\"[CLS]\", 99], \"sep\": [\"</s>\", 1]}", -1, {0}},
      {"{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\"}}], "
       "\"special_tokens\": {\"<s>\": {\"ids\": [0]}}}",
       -1,
       {0}},
      {"{\"type\": \"Mystery\"}", -1, {0}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    snprintf(text, sizeof text, "{\"post_processor\": %s, %s}", cases[i].post, model);
    write_file(path, text);
    tokenizer t;
    const int rc = tokenizer_open(&t, path);
    if (cases[i].n < 0) {
      CHECK(rc == GORP_EINPUT, "post_processor case %zu is refused", i);
      continue;
    }
    CHECK(rc == GORP_OK && t.n_prepend == cases[i].n,
          "post_processor case %zu: %d ids before a text", i, rc ? -1 : t.n_prepend);
    for (int k = 0; !rc && k < cases[i].n && k < t.n_prepend; k++)
      CHECK(t.prepend[k] == cases[i].ids[k], "post_processor case %zu: id %d", i, k);
    if (!rc) tokenizer_free(&t);
  }
  tokenizer t;
  CHECK(tokenizer_init_byte(&t) == GORP_OK && t.n_prepend == 1 &&
            t.prepend[0] == TOKENIZER_BYTE_BOS,
        "the byte-level template is BOS");
  write_file(chat, "{\"before\": \"<u>\", \"after\": \"</u><a>\", \"end\": \"</a>\\n \"}");
  CHECK(tokenizer_open_chat(&t, chat) == GORP_OK && !strcmp(t.chat->before, "<u>") &&
            !strcmp(t.chat->after, "</u><a>") && !strcmp(t.chat->end, "</a>"),
        "chat template read, the end's trailing whitespace dropped");
  static const char *const bad[] = {
      "{\"before\": \"\", \"after\": \"\", \"end\": \" \\n\"}", /* end closes nothing */
      "{\"before\": \"\", \"after\": \"x\"}",                   /* no end */
      "{\"before\": 1, \"after\": \"x\", \"end\": \"y\"}",      /* not a string */
      "{\"before\": \"\", \"after\": \"x\", \"end\": \"y\", \"extra\": \"\"}", /* unknown key */
      "[\"before\"]"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    write_file(chat, bad[i]);
    CHECK(tokenizer_open_chat(&t, chat) == GORP_EINPUT, "bad chat template %zu is refused", i);
  }
  CHECK(!strcmp(t.chat->end, "</a>"), "a refused chat template leaves the attached one");
  tokenizer_free(&t);
  CHECK(t.chat == NULL, "tokenizer_free releases the chat template");
}

/* Each broken file is refused with GORP_EINPUT and a message naming the file and the problem;
 * none may crash on the way out (an added token without "id" used to free a table that was never
 * allocated). */
static void test_hostile_files_are_refused(void) {
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/hostile.json", tmp_dir);
  static const char vocab[] = "\"model\": {\"type\": \"BPE\", \"vocab\": {\"<s>\": 0, "
                              "\"</s>\": 1, \"a\": 2}, \"merges\": []}";
  static const struct {
    const char *what, *added, *needle;
  } cases[] = {
      {"added token without id", "[{\"id\": 0, \"content\": \"<s>\"}, {\"content\": \"x\"}]",
       "needs an id"},
      {"added token with lstrip",
       "[{\"id\": 0, \"content\": \"<s>\"}, {\"id\": 3, \"content\": \"x\", \"lstrip\": true}]",
       "lstrip"},
      {"duplicate key", "[{\"id\": 3, \"content\": \"x\", \"id\": 4}]", "duplicate key \"id\""},
      {"\\u0000 in a token", "[{\"id\": 3, \"content\": \"x\\u0000y\"}]", "\\u0000"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char text[1024];
    snprintf(text, sizeof text, "{\"added_tokens\": %s, %s}", cases[i].added, vocab);
    write_file(path, text);
    tokenizer t;
    capture_begin();
    const int rc = tokenizer_open(&t, path);
    char *msg = capture_end();
    CHECK(rc == GORP_EINPUT && strstr(msg, path) && strstr(msg, cases[i].needle),
          "%s: rc %d, message lacks the file or [%s]:\n%s", cases[i].what, rc, cases[i].needle,
          msg);
    free(msg);
  }
  tokenizer t;
  capture_begin();
  const int rc = tokenizer_open(&t, tmp_dir);
  char *msg = capture_end();
  CHECK(rc == GORP_EINPUT && strstr(msg, "not a regular file"), "a directory: rc %d\n%s", rc, msg);
  free(msg);
}

/* Twelve nested \w* before an 'x' that never comes: a backtracking matcher tries every way of
 * sharing 30 letters among twelve atoms (~10^9) and takes hours; the matcher must finish at
 * once and still find what backtracking finds (the second alternative, then "ax"). */
static void test_split_regex_nested_repetition_is_linear(void) {
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/nested.json", tmp_dir);
  write_file(path,
             "{\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"special\":true},"
             "{\"id\":1,\"content\":\"<s>\",\"special\":true},"
             "{\"id\":2,\"content\":\"</s>\",\"special\":true}],"
             "\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":"
             "\"\\\\w*\\\\w*\\\\w*\\\\w*\\\\w*\\\\w*\\\\w*\\\\w*\\\\w*\\\\w*\\\\w*\\\\w*x|"
             "\\\\w+\"},\"behavior\":\"Removed\",\"invert\":true},"
             "\"model\":{\"type\":\"WordLevel\",\"unk_token\":\"<unk>\",\"vocab\":{\"<unk>\":0,"
             "\"<s>\":1,\"</s>\":2,\"ax\":3,\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":4,\"aab\":5}}}");
  tokenizer t;
  int ierr = tokenizer_open(&t, path);
  CHECK(!ierr, "opening the nested-repetition WordLevel file");
  if (ierr) return;
  ENC(&t, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa ax", 4, 3);
  ENC(&t, "aab ax aaxb", 5, 3, 0, 0); /* "aax" (the longest run ending in x), then "b" */
  tokenizer_free(&t);
}

/* ---- driver mode ------------------------------------------------------------------------------
 */

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 20, n = 0, got;
  char *buf = malloc(cap);
  while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
    n += got;
    if (n + 1 == cap) buf = realloc(buf, cap *= 2);
  }
  fclose(f);
  if (buf) buf[n] = '\0';
  return buf;
}

/* For each item [prefix, sentence, suffix, label]: prompt_parts_encode's evaluation input and
 * training sequence (no cut), one line each in <prefix>.<name>.eval and .train. */
static int run_items(const tokenizer *t, const char *name, const cJSON *items, const char *prefix) {
  char file[PATH_MAX + 64];
  snprintf(file, sizeof file, "%s.%s.eval", prefix, name);
  FILE *fe = fopen(file, "w");
  snprintf(file, sizeof file, "%s.%s.train", prefix, name);
  FILE *ft = fopen(file, "w");
  int cap = 1 << 16, rc = !fe || !ft;
  int *buf = malloc((size_t)cap * sizeof(int)), *tg = malloc((size_t)cap * sizeof(int));
  const cJSON *it;
  cJSON_ArrayForEach(it, items) {
    if (rc) break;
    const prompt_parts p = {.prefix = cJSON_GetArrayItem(it, 0)->valuestring,
                            .sentence = cJSON_GetArrayItem(it, 1)->valuestring,
                            .suffix = cJSON_GetArrayItem(it, 2)->valuestring};
    const char *label = cJSON_GetArrayItem(it, 3)->valuestring;
    for (int train = 0; train < 2 && !rc; train++) {
      int n = 0;
      rc = prompt_parts_encode(t, &p, train ? label : NULL, 1 << 20, 1 << 20, buf, tg, &n, cap);
      for (int i = 0; i < n && !rc; i++) fprintf(train ? ft : fe, i ? " %d" : "%d", buf[i]);
      if (!rc) fputc('\n', train ? ft : fe);
    }
  }
  if (fe) fclose(fe);
  if (ft) fclose(ft);
  free(buf);
  free(tg);
  return rc;
}

static const char *jstr_or_null(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int run_one(const char *name, const char *path, const cJSON *texts, const cJSON *items,
                   const cJSON *chats, const char *prefix) {
  tokenizer t;
  if (tokenizer_open(&t, path)) return 1;
  int count = cJSON_GetArraySize(texts), cap = 1 << 20, rc = 0;
  int **ids = calloc((size_t)count, sizeof(int *)), *lens = calloc((size_t)count, sizeof(int));
  int *buf = malloc((size_t)cap * sizeof(int));
  size_t bytes = 0;
  double t0 = proc_now_s();
  const cJSON *item = texts->child; /* walked in order: cJSON_GetArrayItem is O(i) */
  for (int i = 0; i < count && !rc; i++, item = item->next) {
    const char *text = item->valuestring;
    int n = 0;
    rc = tokenizer_encode(&t, text, buf, &n, cap);
    ids[i] = malloc(((size_t)n + 1) * sizeof(int));
    memcpy(ids[i], buf, (size_t)n * sizeof(int));
    lens[i] = n;
    bytes += strlen(text);
  }
  double secs = proc_now_s() - t0;
  char file[PATH_MAX + 64];
  snprintf(file, sizeof file, "%s.%s.ids", prefix, name);
  FILE *fi = fopen(file, "w");
  snprintf(file, sizeof file, "%s.%s.dec", prefix, name);
  FILE *fd = fopen(file, "w");
  if (!fi || !fd) rc = 1;
  for (int i = 0; i < count && !rc; i++) {
    for (int k = 0; k < lens[i]; k++) fprintf(fi, k ? " %d" : "%d", ids[i][k]);
    fputc('\n', fi);
    char *s = NULL;
    rc = tokenizer_decode(&t, ids[i], lens[i], &s);
    if (rc) break;
    cJSON *js = cJSON_CreateString(s);
    char *line = cJSON_PrintUnformatted(js);
    fprintf(fd, "%s\n", line);
    free(line);
    cJSON_Delete(js);
    free(s);
  }
  if (fi) fclose(fi);
  if (fd) fclose(fd);
  if (!rc && cJSON_IsArray(items)) rc = run_items(&t, name, items, prefix);
  const char *chat = jstr_or_null(chats, name);
  if (!rc && chat && cJSON_IsArray(items)) { /* the same items inside the model's chat template */
    char chat_name[256];
    snprintf(chat_name, sizeof chat_name, "%s.chat", name);
    rc = tokenizer_open_chat(&t, chat);
    if (!rc) rc = run_items(&t, chat_name, items, prefix);
  }
  printf("driver: %s: encoded %d texts (%zu bytes) in %.3f s\n", name, count, bytes, secs);
  for (int i = 0; i < count; i++) free(ids[i]);
  free(ids);
  free(lens);
  free(buf);
  tokenizer_free(&t);
  return rc;
}

static int run_driver(const char *cases, const char *prefix) {
  char *text = slurp(cases);
  cJSON *root = text ? cJSON_Parse(text) : NULL;
  free(text);
  const cJSON *toks = cJSON_GetObjectItem(root, "tokenizers"),
              *texts = cJSON_GetObjectItem(root, "texts");
  if (!cJSON_IsObject(toks) || !cJSON_IsArray(texts)) {
    fprintf(stderr, "driver: %s must hold {\"tokenizers\": {...}, \"texts\": [...]}\n", cases);
    cJSON_Delete(root);
    return 1;
  }
  int rc = 0;
  const cJSON *it;
  const cJSON *items = cJSON_GetObjectItem(root, "items"),
              *chats = cJSON_GetObjectItem(root, "chat");
  cJSON_ArrayForEach(it, toks) if (!rc) rc =
      run_one(it->string, it->valuestring, texts, items, chats, prefix);
  char file[PATH_MAX + 64];
  snprintf(file, sizeof file, "%s.classes", prefix);
  FILE *f = fopen(file, "w");
  if (!f) rc = 1;
  for (uint32_t cp = 0; f && cp < 0x110000; cp++)
    fputc("0123456789abcdef"[tokenizer_codepoint_class(cp) & 15], f);
  if (f) fclose(f);
  cJSON_Delete(root);
  return rc;
}

static int rm_tmp(void) {
  const char *names[] = {"sp.json", "wl.json", "bad.json"};
  char path[PATH_MAX + 32];
  for (int i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", tmp_dir, names[i]);
    unlink(path);
  }
  return rmdir(tmp_dir);
}

int main(void) {
  setup_dirs();
  test_gpt2_hand_checked_ids();
  test_sentencepiece_style_bpe();
  test_wordlevel_split_regex();
  test_llama2_converted_file();
  test_codepoint_classes();
  test_load_errors();
  test_template_and_chat();
  test_hostile_files_are_refused();
  test_split_regex_nested_repetition_is_linear();
  rm_tmp();
  const char *cases = getenv("GORP_TOK_CASES"), *out = getenv("GORP_TOK_OUT");
  int rc = 0;
  if (cases && cases[0]) rc = run_driver(cases, out && out[0] ? out : "tok_out");
  printf("%d passed, %d failed\n", n_pass, n_fail);
  return n_fail || rc ? 1 : 0;
}
