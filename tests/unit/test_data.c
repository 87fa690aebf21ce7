/* Unit tests of the data path: the byte-level tokenizer, the CL_Benchmark loader on every mini
 * dataset, the exact benchmark prompt, the training target mask, sentence truncation, answer
 * normalisation, and the loader's errors on broken copies written to a temporary folder.
 * Not for: BPE tokenizers, the synthetic suite, batching. No MPI. */
#include "testutil.h"
#include "gorp/clbench.h"
#include "gorp/err.h"
#include "gorp/metrics.h"
#include "gorp/prompt.h"
#include "gorp/tokenizer.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_dir[PATH_MAX]; /* mkdtemp folder for broken data and captured stderr */
static char data_dir[PATH_MAX];

/* ---- helpers ----------------------------------------------------------------------------------
 */

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(text, 1, strlen(text), f) != strlen(text) || fclose(f)) {
    fprintf(stderr, "test_data: cannot write %s\n", path);
    exit(2);
  }
}

static void setup_dirs(void) {
  const char *env = getenv("GORP_DATA");
  const char *src = getenv("GORP_SRC");
  if (env && env[0])
    fmt_path(data_dir, "%s", env);
  else if (src && src[0])
    fmt_path(data_dir, "%s/../shared/data", src);
  else
    fmt_path(data_dir, "../shared/data");
  const char *tmp = getenv("TMPDIR");
  fmt_path(tmp_dir, "%s/gorp_test_data_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
  if (!mkdtemp(tmp_dir)) {
    perror("test_data: mkdtemp");
    exit(2);
  }
}

static int decode_equals(const tokenizer *tok, const int *ids, int n, const char *expected) {
  char *s = NULL;
  int ok = !tokenizer_decode(tok, ids, n, &s) && !strcmp(s, expected);
  if (!ok) printf("  decoded: [%s]\n  expected: [%s]\n", s ? s : "(error)", expected);
  free(s);
  return ok;
}

static void load_mini(cl_task *t, const char *dataset) {
  char root[PATH_MAX], instr[PATH_MAX];
  fmt_path(root, "%s/CL_Benchmark/mini", data_dir);
  fmt_path(instr, "%s/CL_Benchmark/instruction_config.json", data_dir);
  if (clbench_load(t, root, dataset, instr)) {
    fprintf(stderr, "test_data: cannot load mini/%s from %s\n", dataset, root);
    exit(2);
  }
}

/* ---- tokenizer --------------------------------------------------------------------------------
 */

static void test_byte_tokenizer_round_trips_utf8(void) {
  tokenizer tok;
  CHECK(tokenizer_open(&tok, "byte") == GORP_OK, "open byte");
  CHECK(tok.vocab_size == 259 && tok.bos_id == 256 && tok.eos_id == 257 && tok.pad_id == 258,
        "layout %d %d %d %d", tok.vocab_size, tok.bos_id, tok.eos_id, tok.pad_id);

  const char *text = "h\xc3\xa9llo, \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x99\x82\n\ttab";
  int ids[64], n = 1;
  ids[0] = tok.bos_id; /* encode appends after what is there */
  CHECK(tokenizer_encode(&tok, text, ids, &n, 64) == GORP_OK, "encode");
  CHECK(n == 1 + (int)strlen(text), "n %d", n);
  int bytes_ok = 1;
  for (size_t i = 0; i < strlen(text); i++) bytes_ok &= ids[1 + i] == (unsigned char)text[i];
  CHECK(bytes_ok, "ids are the UTF-8 bytes");
  ids[n++] = tok.eos_id;
  ids[n++] = tok.pad_id;
  CHECK(decode_equals(&tok, ids, n, text), "decode skips BOS/EOS/PAD and restores the text");

  int m = 0;
  CHECK(tokenizer_encode_head(&tok, text, 3, ids, &m, 64) == GORP_OK && m == 3, "head m=%d", m);
  m = 0;
  CHECK(tokenizer_encode_head(&tok, "ab", 10, ids, &m, 64) == GORP_OK && m == 2, "short m=%d", m);
  m = 0;
  CHECK(tokenizer_encode(&tok, "abc", NULL, &m, 0) == GORP_OK && m == 3, "count-only m=%d", m);

  capture_begin();
  m = 2;
  int rc_over = tokenizer_encode(&tok, "abcdef", ids, &m, 4);
  int bad_id[1] = {300};
  char *s = NULL;
  int rc_id = tokenizer_decode(&tok, bad_id, 1, &s);
  tokenizer other;
  int rc_spec = tokenizer_open(&other, "gpt2/tokenizer.json");
  char *msg = capture_end();
  CHECK(rc_over == GORP_EINPUT && m == 2, "overflow rc %d m %d", rc_over, m);
  CHECK(rc_id == GORP_EINPUT && !s, "bad id rc %d", rc_id);
  CHECK(rc_spec == GORP_EINPUT, "unknown spec rc %d", rc_spec);
  CHECK(strstr(msg, "tokenizer 'gpt2/tokenizer.json': cannot open it"), "%s", msg);
  CHECK(strstr(msg, "id 300 at position 0"), "%s", msg);
  free(msg);
  tokenizer_free(&tok);
}

/* ---- loader on the real mini benchmark ------------------------------------------------------- */

static void check_task(const cl_task *t, const char *type, const char *dataset) {
  CHECK(!strcmp(t->task_type, type) && !strcmp(t->dataset, dataset), "%s/%s", type, dataset);
  CHECK(t->n_labels > 0 && t->n_train > 0 && t->n_test > 0, "%s: counts %d %d %d", dataset,
        t->n_labels, t->n_train, t->n_test);
  CHECK(t->n_test_unlabelled == 0, "%s: mini has no '-' items, got %d", dataset,
        t->n_test_unlabelled);
  CHECK(!strcmp(type, "COPA") ? t->instruction == NULL : t->instruction != NULL,
        "%s: instruction only for non-COPA", dataset);
  int unknown = 0;
  for (int s = 0; s < 2; s++) {
    const cl_item *items = s ? t->test : t->train;
    int n = s ? t->n_test : t->n_train;
    for (int i = 0; i < n; i++) {
      unknown += !metrics_in_list(items[i].label, t->labels, t->n_labels);
      unknown += !items[i].sentence || !items[i].sentence[0];
    }
  }
  CHECK(unknown == 0, "%s: %d items with unknown label or empty sentence", dataset, unknown);
}

static void test_every_mini_dataset_loads_with_known_labels(void) {
  char root[PATH_MAX];
  fmt_path(root, "%s/CL_Benchmark/mini", data_dir);
  DIR *types = opendir(root);
  CHECK(types != NULL, "open %s", root);
  if (!types) return;
  int n_sets = 0, seen_agnews = 0, seen_copa = 0;
  const struct dirent *e;
  while ((e = readdir(types))) {
    char type_dir[PATH_MAX];
    if (e->d_name[0] == '.') continue;
    fmt_path(type_dir, "%s/%s", root, e->d_name);
    DIR *sets = opendir(type_dir);
    if (!sets) continue; /* a file beside the task-type folders */
    const struct dirent *d;
    while ((d = readdir(sets))) {
      if (d->d_name[0] == '.') continue;
      cl_task t;
      load_mini(&t, d->d_name);
      check_task(&t, e->d_name, d->d_name);
      seen_agnews |= !strcmp(d->d_name, "agnews");
      seen_copa |= !strcmp(d->d_name, "COPA");
      n_sets++;
      clbench_free(&t);
    }
    closedir(sets);
  }
  closedir(types);
  printf("loaded %d mini datasets\n", n_sets);
  CHECK(n_sets > 0 && seen_agnews && seen_copa, "n_sets %d", n_sets);
}

/* ---- prompts ----------------------------------------------------------------------------------
 */

static const char agnews_test0_prompt[] =
    "Task:TC\nDataset:agnews\nWhat is the topic of the following paragraph? Choose one from the "
    "option.\nOption: World, Sports, Business, Science or Technology \nTitle: Taser Execs Selling "
    "Heavily on the News\nText: Shares of Taser International Inc. (TASR.O: Quote, Profile, "
    "Research) have jumped 20 percent since early last week as the stun gun maker issued a slew of "
    "announcements \n\nAnswer:";

static const char copa_test0_prompt[] =
    "Task:COPA\nDataset:COPA\nWhich sentence is the effect of \"I twisted the cap off the soda "
    "bottle.\"? Choose one between A and B.\nA: The soda fizzed.\nB: The soda leaked out.\nAnswer:";

static void check_prompt(const cl_task *t, const char *expected) {
  tokenizer tok;
  tokenizer_init_byte(&tok);
  prompt_parts p;
  CHECK(prompt_parts_make(&p, t, t->test[0].sentence) == GORP_OK, "%s parts", t->dataset);
  size_t len = strlen(p.prefix) + strlen(p.sentence) + strlen(p.suffix);
  char *joined = malloc(len + 1);
  sprintf(joined, "%s%s%s", p.prefix, p.sentence, p.suffix);
  CHECK(!strcmp(joined, expected), "%s prompt:\n[%s]\nexpected:\n[%s]", t->dataset, joined,
        expected);
  CHECK(!strcmp(p.suffix, "\nAnswer:"), "suffix [%s]", p.suffix);
  free(joined);
  prompt_parts_free(&p);

  int tokens[4096], n = 0;
  CHECK(prompt_encode_eval(&tok, t, t->test[0].sentence, 4096, tokens, &n, 4096) == GORP_OK,
        "eval encode");
  CHECK(n == 1 + (int)strlen(expected) && tokens[0] == tok.bos_id, "eval n %d", n);
  CHECK(decode_equals(&tok, tokens, n, expected), "eval tokens are [BOS] + prompt");
}

static void test_agnews_and_copa_prompts_match_benchmark_format(void) {
  cl_task t;
  load_mini(&t, "agnews");
  check_prompt(&t, agnews_test0_prompt);
  clbench_free(&t);
  load_mini(&t, "COPA");
  check_prompt(&t, copa_test0_prompt);
  clbench_free(&t);
}

/* Checks the mask: -1 everywhere except the positions that predict an answer token or EOS. */
static void check_targets(const int *tokens, const int *targets, int n, int answer_start) {
  int bad = 0;
  for (int i = 0; i < n; i++) {
    int want = (i + 1 >= answer_start && i + 1 < n) ? tokens[i + 1] : -1;
    bad += targets[i] != want;
  }
  CHECK(bad == 0, "%d targets differ from the shift-by-one answer mask", bad);
}

static void test_train_targets_are_answer_and_eos_shifted_by_one(void) {
  cl_task t;
  tokenizer tok;
  tokenizer_init_byte(&tok);
  load_mini(&t, "agnews");
  const cl_item *item = &t.train[0];
  CHECK(!strcmp(item->label, "Sports"), "first agnews train label %s", item->label);
  int tokens[4096], targets[4096], n = 0;
  CHECK(prompt_encode_train(&tok, &t, item, 512, 50, tokens, targets, &n, 4096) == GORP_OK, "enc");
  int answer_len = (int)strlen(" Sports");
  int answer_start = n - 1 - answer_len;
  CHECK(tokens[0] == tok.bos_id && tokens[n - 1] == tok.eos_id, "BOS ... EOS");
  CHECK(decode_equals(&tok, tokens + answer_start, answer_len, " Sports"), "answer tokens");
  check_targets(tokens, targets, n, answer_start);
  CHECK(targets[answer_start - 1] == ' ' && targets[n - 2] == tok.eos_id && targets[n - 1] == -1,
        "first target is the answer's space, last real target is EOS");
  int n_loss = 0;
  for (int i = 0; i < n; i++) n_loss += targets[i] >= 0;
  CHECK(n_loss == answer_len + 1, "loss positions %d", n_loss);

  /* max_target cuts the answer but keeps EOS */
  CHECK(prompt_encode_train(&tok, &t, item, 512, 2, tokens, targets, &n, 4096) == GORP_OK, "enc2");
  CHECK(decode_equals(&tok, tokens + n - 3, 2, " S") && tokens[n - 1] == tok.eos_id, "cut answer");
  check_targets(tokens, targets, n, n - 3);

  /* the brief's picture: [BOS p p p a1 a2 EOS] -> [-1 -1 -1 a1 a2 EOS -1] */
  cl_task tiny = {.task_type = "COPA", .dataset = "x"};
  cl_item it = {.sentence = "", .label = "b"};
  CHECK(prompt_encode_train(&tok, &tiny, &it, 0, 1, tokens, targets, &n, 4096) == GORP_OK, "tiny");
  int k = n - 3; /* tokens[k] is the last prompt token ':' */
  CHECK(tokens[k] == ':' && tokens[k + 1] == ' ' && tokens[k + 2] == tok.eos_id, "tiny layout");
  CHECK(targets[k - 1] == -1 && targets[k] == ' ' && targets[k + 1] == tok.eos_id &&
            targets[k + 2] == -1,
        "tiny targets %d %d %d %d", targets[k - 1], targets[k], targets[k + 1], targets[k + 2]);
  clbench_free(&t);
}

static void test_truncation_cuts_only_the_sentence(void) {
  cl_task t;
  tokenizer tok;
  tokenizer_init_byte(&tok);
  load_mini(&t, "agnews");
  const cl_item *item = &t.train[0];
  prompt_parts p;
  prompt_parts_make(&p, &t, item->sentence);
  char expected[4096];
  for (int max_source = 0; max_source <= 10; max_source += 10) {
    snprintf(expected, sizeof(expected), "%s%.*s\nAnswer:", p.prefix, max_source, item->sentence);
    int tokens[4096], targets[4096], n = 0;
    CHECK(prompt_encode_eval(&tok, &t, item->sentence, max_source, tokens, &n, 4096) == GORP_OK,
          "eval");
    CHECK(decode_equals(&tok, tokens, n, expected), "eval max_source %d", max_source);
    CHECK(prompt_encode_train(&tok, &t, item, max_source, 50, tokens, targets, &n, 4096) == GORP_OK,
          "train");
    strcat(expected, " Sports");
    CHECK(decode_equals(&tok, tokens, n, expected), "train max_source %d", max_source);
  }

  /* a buffer too small for the scaffold is an error naming the task, with nothing written */
  int tokens[32], targets[32], n = -7;
  capture_begin();
  int rc = prompt_encode_train(&tok, &t, item, 4, 4, tokens, targets, &n, 32);
  char *msg = capture_end();
  CHECK(rc == GORP_EINPUT && n == -7, "rc %d n %d", rc, n);
  CHECK(strstr(msg, "TC/agnews") && strstr(msg, "buffer holds 32"), "%s", msg);
  free(msg);
  prompt_parts_free(&p);
  clbench_free(&t);
}

/* ---- normalisation ----------------------------------------------------------------------------
 */

static void check_norm(const char *in, const char *want) {
  char *out = NULL;
  CHECK(metrics_normalize(in, &out) == GORP_OK && !strcmp(out, want),
        "normalize [%s] -> [%s], want [%s]", in, out ? out : "(null)", want);
  CHECK(metrics_exact_match(in, want), "exact_match agrees with normalize on [%s]", in);
  free(out);
}

static void test_normalize_matches_upstream_normalize_answer(void) {
  check_norm("Science or Technology", "science or technology");
  check_norm("World.", "world");
  check_norm("  very   negative  ", "very negative");
  check_norm("\tvery\n\nnegative \r\n", "very negative");
  check_norm("", "");
  check_norm("!?...", "");
  check_norm("a - b", "a b");
  check_norm("Don't stop!", "dont stop");
  check_norm("x\x1cy\x1fz\v\f", "x y z"); /* Python's str.split() treats \x1c-\x1f as space */
  check_norm("\xc3\x89t\xc3\xa9", "\xc3\x89t\xc3\xa9"); /* non-ASCII passes through */
  CHECK(metrics_exact_match(" Sports!", "sports"), "punctuation and case");
  CHECK(!metrics_exact_match("Sport", "Sports"), "prefix is not a match");
  CHECK(!metrics_exact_match("World", ""), "empty label");
  CHECK(!metrics_exact_match("very negative", "verynegative"), "inner space matters");
  char *labels[] = {"World", "Sports", "Business", "Science or Technology"};
  CHECK(metrics_in_list("science   or technology.", labels, 4), "in list");
  CHECK(!metrics_in_list("Science", labels, 4), "not in list");
  CHECK(!metrics_in_list("World", labels, 0), "empty list");
}

/* ---- loader errors on broken copies -----------------------------------------------------------
 */

static char toy_root[PATH_MAX], toy_dir[PATH_MAX], toy_instr[PATH_MAX];
static char toy_train[PATH_MAX], toy_test[PATH_MAX], toy_labels[PATH_MAX];

static const char good_labels[] = "[\"World\", \"Sports\"]";
static const char good_train[] =
    "[{\"label\": \"World\", \"sentence\": \"a\"}, {\"sentence\": \"b\", \"label\": \"Sports\"}]";
static const char good_test[] =
    "[{\"label\": \"Sports\", \"sentence\": \"c\"}, {\"label\": \"-\", \"sentence\": \"d\"}]";
static const char good_instr[] = "{\"TC\": [{\"instruction_type\": \"zero-shot\", "
                                 "\"instruction\": \"Pick one.\\n\"}]}";

static void write_toy(void) {
  write_file(toy_labels, good_labels);
  write_file(toy_train, good_train);
  write_file(toy_test, good_test);
  write_file(toy_instr, good_instr);
}

static void setup_toy(void) {
  char dir[PATH_MAX];
  fmt_path(toy_root, "%s/root", tmp_dir);
  fmt_path(dir, "%s/TC", toy_root);
  fmt_path(toy_dir, "%s/TC/toy", toy_root);
  fmt_path(toy_instr, "%s/instructions.json", tmp_dir);
  fmt_path(toy_train, "%s/train.json", toy_dir);
  fmt_path(toy_test, "%s/test.json", toy_dir);
  fmt_path(toy_labels, "%s/labels.json", toy_dir);
  if (mkdir(toy_root, 0700) || mkdir(dir, 0700) || mkdir(toy_dir, 0700)) {
    perror("test_data: mkdir");
    exit(2);
  }
  write_toy();
}

/* Writes text to path, loads dataset from the toy root and expects GORP_EINPUT with a message
 * that holds every needle; restores the good files after. */
static void expect_error(const char *name, const char *path, const char *text, const char *dataset,
                         const char *needle1, const char *needle2, const char *needle3) {
  if (path) write_file(path, text);
  cl_task t;
  capture_begin();
  int rc = clbench_load(&t, toy_root, dataset, toy_instr);
  char *msg = capture_end();
  CHECK(rc == GORP_EINPUT, "%s: rc %d\n%s", name, rc, msg);
  const char *needles[3] = {needle1, needle2, needle3};
  for (int i = 0; i < 3; i++)
    if (needles[i])
      CHECK(strstr(msg, needles[i]), "%s: message lacks [%s]:\n%s", name, needles[i], msg);
  CHECK(t.labels == NULL && t.train == NULL && t.test == NULL && t.n_train == 0,
        "%s: task left empty", name);
  free(msg);
  write_toy();
}

static void test_toy_dataset_loads_both_key_orders_and_unlabelled(void) {
  cl_task t;
  CHECK(clbench_load(&t, toy_root, "toy", toy_instr) == GORP_OK, "toy loads");
  CHECK(t.n_labels == 2 && t.n_train == 2 && t.n_test == 2 && t.n_test_unlabelled == 1,
        "counts %d %d %d %d", t.n_labels, t.n_train, t.n_test, t.n_test_unlabelled);
  CHECK(!strcmp(t.train[1].label, "Sports") && !strcmp(t.train[1].sentence, "b"), "key order");
  CHECK(!strcmp(t.test[1].label, "-"), "unlabelled item kept");
  CHECK(t.instruction && !strcmp(t.instruction, "Pick one.\n"), "instruction");
  CHECK(!metrics_in_list(t.test[1].label, t.labels, t.n_labels), "'-' is never correct");
  clbench_free(&t);
}

static void test_loader_errors_name_file_and_position(void) {
  char buf[PATH_MAX + 64];

  const char malformed[] = "[{\"label\": \"World\", \"sentence\": \"a\"}\n {\"label\": \"World\", "
                           "\"sentence\": \"b\"}]";
  size_t off = (size_t)(strstr(malformed, "\n {") + 2 - malformed);
  snprintf(buf, sizeof(buf), "byte offset %zu (line 2, column 2)", off);
  expect_error("malformed JSON", toy_train, malformed, "toy", toy_train, "malformed JSON", buf);
  expect_error("truncated JSON", toy_train, "[{\"label\": \"World\", \"sent", "toy", toy_train,
               "malformed JSON", "byte offset");
  expect_error("empty file", toy_train, "", "toy", toy_train, "byte offset 0", "empty");

  expect_error("no label", toy_train,
               "[{\"label\": \"World\", \"sentence\": \"a\"}, {\"sentence\": \"b\"}]", "toy",
               toy_train, "item 1 (0-based) has no \"label\" key", NULL);
  expect_error("no sentence", toy_test, "[{\"label\": \"World\"}]", "toy", toy_test,
               "item 0 (0-based) has no \"sentence\" key", NULL);
  expect_error("number label", toy_train, "[{\"label\": 3, \"sentence\": \"a\"}]", "toy", toy_train,
               "\"label\" is a number, expected a string", NULL);
  expect_error("item not object", toy_train, "[[\"World\", \"a\"]]", "toy", toy_train,
               "item 0 (0-based) is a list", NULL);
  expect_error("not a list", toy_train, "{\"label\": \"World\", \"sentence\": \"a\"}", "toy",
               toy_train, "expected a JSON list", "found an object");
  expect_error("unknown label", toy_test,
               "[{\"label\": \"Sports\", \"sentence\": \"c\"}, {\"label\": \"Weather\", "
               "\"sentence\": \"d\"}]",
               "toy", toy_test, "item 1 (0-based) has label 'Weather'", toy_labels);
  expect_error("'-' in train", toy_train, "[{\"label\": \"-\", \"sentence\": \"a\"}]", "toy",
               toy_train, "label '-'", NULL);
  expect_error("empty split", toy_test, "[]", "toy", toy_test, "split is empty", NULL);
  expect_error("empty labels", toy_labels, "[]", "toy", toy_labels, "label list is empty", NULL);
  expect_error("duplicate label", toy_labels, "[\"World\", \"World\"]", "toy", toy_labels,
               "appears twice", NULL);

  const char bad_byte[] = "[{\"label\": \"World\", \"sentence\": \"caf\xff\"}]";
  snprintf(buf, sizeof(buf), "byte offset %zu", (size_t)(strchr(bad_byte, '\xff') - bad_byte));
  expect_error("invalid UTF-8", toy_train, bad_byte, "toy", toy_train, "invalid UTF-8", buf);
  expect_error("overlong UTF-8", toy_train, "[{\"label\": \"World\", \"sentence\": \"\xc0\xaf\"}]",
               "toy", toy_train, "invalid UTF-8 (byte 0xC0)", NULL);
  expect_error("UTF-8 surrogate", toy_test,
               "[{\"label\": \"World\", \"sentence\": \"\xed\xa0\x80\"}]", "toy", toy_test,
               "invalid UTF-8 (byte 0xED)", NULL);
  expect_error("cut UTF-8", toy_test, "[{\"label\": \"World\", \"sentence\": \"\xe4\xb8\"}]", "toy",
               toy_test, "invalid UTF-8", NULL);

  /* cJSON would end the sentence at \u0000, and keep the first of two keys where Python keeps
   * the last: both are refused, naming file, item and key */
  expect_error("\\u0000 in a sentence", toy_train,
               "[{\"label\": \"World\", \"sentence\": \"a\"},\n {\"label\": \"World\", "
               "\"sentence\": \"cut\\u0000here\"}]",
               "toy", toy_train, "\\u0000 (a NUL character)",
               "line 2, column 37) in item 1 (0-based)");
  expect_error("escaped backslash before u0000 is text", toy_train,
               "[{\"label\": \"World\", \"sentence\": \"\\\\u0000\"}, {\"label\": 1}]", "toy",
               toy_train, "\"label\" is a number", NULL);
  expect_error("duplicate key", toy_test,
               "[{\"label\": \"World\", \"sentence\": \"a\"}, {\"label\": \"World\", "
               "\"sentence\": \"b\", \"label\": \"Sports\"}]",
               "toy", toy_test, "duplicate key \"label\" in the object at $[1]", NULL);

  expect_error("unknown dataset", NULL, NULL, "nosuch", "dataset 'nosuch' not found", toy_root,
               NULL);
  char missing[PATH_MAX];
  fmt_path(missing, "%s/no-such-root", tmp_dir);
  cl_task t;
  capture_begin();
  int rc = clbench_load(&t, missing, "toy", toy_instr);
  char *msg = capture_end();
  CHECK(rc == GORP_EINPUT && strstr(msg, missing) && strstr(msg, "'toy'"), "missing root:\n%s",
        msg);
  free(msg);

  if (remove(toy_test)) perror("remove");
  expect_error("missing test.json", NULL, NULL, "toy", "cannot open", toy_test, NULL);

  expect_error("no instruction", toy_instr, "{\"SC\": [{\"instruction\": \"x\"}]}", "toy",
               toy_instr, "no instruction for task type 'TC'", NULL);
  expect_error("instruction not a string", toy_instr, "{\"TC\": [{\"instruction\": 1}]}", "toy",
               toy_instr, "\"TC\"", NULL);

  char other[PATH_MAX];
  fmt_path(other, "%s/SC", toy_root);
  mkdir(other, 0700);
  fmt_path(other, "%s/SC/toy", toy_root);
  mkdir(other, 0700);
  expect_error("ambiguous dataset", NULL, NULL, "toy", "ambiguous", "'SC' and 'TC'", toy_root);
  rmdir(other);
}

static void test_copa_needs_no_instruction(void) {
  char dir[PATH_MAX], path[PATH_MAX];
  fmt_path(dir, "%s/COPA", toy_root);
  mkdir(dir, 0700);
  fmt_path(dir, "%s/COPA/copa2", toy_root);
  mkdir(dir, 0700);
  fmt_path(path, "%s/labels.json", dir);
  write_file(path, "[\"A\", \"B\"]");
  fmt_path(path, "%s/train.json", dir);
  write_file(path, "[{\"label\": \"A\", \"sentence\": \"q?\"}]");
  fmt_path(path, "%s/test.json", dir);
  write_file(path, "[{\"label\": \"B\", \"sentence\": \"r?\"}]");
  cl_task t;
  CHECK(clbench_load(&t, toy_root, "copa2", toy_instr) == GORP_OK,
        "COPA loads without instruction");
  CHECK(t.instruction == NULL && !strcmp(t.task_type, "COPA"), "COPA instruction NULL");
  prompt_parts p;
  CHECK(prompt_parts_make(&p, &t, "q?") == GORP_OK, "parts");
  CHECK(!strcmp(p.prefix, "Task:COPA\nDataset:copa2\n"), "COPA prefix [%s]", p.prefix);
  prompt_parts_free(&p);
  clbench_free(&t);
}

int main(void) {
  setup_dirs();
  setup_toy();
  test_byte_tokenizer_round_trips_utf8();
  test_every_mini_dataset_loads_with_known_labels();
  test_agnews_and_copa_prompts_match_benchmark_format();
  test_train_targets_are_answer_and_eos_shifted_by_one();
  test_truncation_cuts_only_the_sentence();
  test_normalize_matches_upstream_normalize_answer();
  test_toy_dataset_loads_both_key_orders_and_unlabelled();
  test_loader_errors_name_file_and_position();
  test_copa_needs_no_instruction();
  rm_tree(tmp_dir);
  return tests_finish();
}
