/* Unit tests of the synthetic suite (synth.h): the generator is a pure function of the seed,
 * labels are the task's own and balanced, every item follows its documented rule, the six orders
 * load, the prompt scaffold is the benchmark's, the written tokenizer.json loads and round-trips
 * every prompt + " " + label without <unk>, and the pretraining mix has the documented shape.
 *
 * Whitespace rule of the round trip: the tokenizer drops spaces and its file has no decoder, so
 * decode joins the tokens with one space; decode(encode(s)) must equal canon(s), the tokens of s
 * (as the regex \w+|[^\w\s]|\n cuts it, computed here independently) joined by single spaces.
 *
 * Driver mode, for tests/ref/test_synth_tokenizer.py: with GORP_SYNTH_OUT=<dir> it runs the
 * checks above, then writes <dir>/tokenizer.json and <dir>/cases.json, {"texts": [...],
 * "ids": [[...], ...], "decoded": [...]}: C encodings of a sample of prompts, prompt + " " +
 * label texts of every task and pretraining examples. Not for: training on the suite. No MPI. */
#include "testutil.h"
#include "gorp/err.h"
#include "gorp/prompt.h"
#include "gorp/synth.h"
#include "gorp/tokenizer.h"

#include <cjson/cJSON.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmp_dir[PATH_MAX];

static void setup_dir(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(tmp_dir, sizeof tmp_dir, "%s/gorp_test_synth_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
  if (!mkdtemp(tmp_dir)) {
    perror("test_synth: mkdtemp");
    exit(2);
  }
}

/* ---- helpers ---------------------------------------------------------------------------------
 */

static int is_w(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Tokens of s as \w+|[^\w\s]|\n cuts it (ASCII), into words[] (each malloc'd); returns count. */
static int split_tokens(const char *s, char **words, int cap) {
  int n = 0;
  for (size_t i = 0; s[i];) {
    unsigned char c = (unsigned char)s[i];
    if (c != '\n' && (c == ' ' || (c >= '\t' && c <= '\r'))) {
      i++;
      continue;
    }
    size_t j = i + 1;
    if (is_w(c))
      while (is_w((unsigned char)s[j])) j++;
    if (n < cap) words[n] = strndup(s + i, j - i);
    n++;
    i = j;
  }
  return n;
}

static void free_words(char **words, int n) {
  for (int i = 0; i < n; i++) free(words[i]);
}

/* canon(s): the tokens of s joined by single spaces (malloc'd). */
static char *canon(const char *s) {
  char *words[1024];
  int n = split_tokens(s, words, 1024);
  size_t len = 1;
  for (int i = 0; i < n && i < 1024; i++) len += strlen(words[i]) + 1;
  char *out = calloc(len, 1);
  for (int i = 0; i < n && i < 1024; i++) {
    if (i) strcat(out, " ");
    strcat(out, words[i]);
  }
  free_words(words, n < 1024 ? n : 1024);
  return out;
}

/* prefix + sentence + suffix of item's prompt (malloc'd), optionally + " " + label. */
static char *prompt_text(const cl_task *t, const cl_item *it, int with_label) {
  prompt_parts p;
  if (prompt_parts_make(&p, t, it->sentence)) return NULL;
  size_t len = strlen(p.prefix) + strlen(p.sentence) + strlen(p.suffix) + strlen(it->label) + 2;
  char *s = malloc(len);
  snprintf(s, len, "%s%s%s%s%s", p.prefix, p.sentence, p.suffix, with_label ? " " : "",
           with_label ? it->label : "");
  prompt_parts_free(&p);
  return s;
}

static int items_equal(const cl_item *a, const cl_item *b, int n) {
  for (int i = 0; i < n; i++)
    if (strcmp(a[i].sentence, b[i].sentence) || strcmp(a[i].label, b[i].label)) return 0;
  return 1;
}

/* ---- the generator ---------------------------------------------------------------------------
 */

static void test_generator_is_deterministic_for_a_seed(void) {
  for (int d = 0; d < SYNTH_N_DATASETS; d++) {
    cl_task a, b, c;
    int ra = synth_load(&a, synth_datasets[d], 7, 50, 20);
    int rb = synth_load(&b, synth_datasets[d], 7, 50, 20);
    int rc = synth_load(&c, synth_datasets[d], 8, 50, 20);
    CHECK(!ra && !rb && !rc, "%s: rc %d %d %d", synth_datasets[d], ra, rb, rc);
    if (ra || rb || rc) return;
    CHECK(items_equal(a.train, b.train, 50) && items_equal(a.test, b.test, 20),
          "%s: two loads with seed 7 differ", synth_datasets[d]);
    CHECK(!items_equal(a.train, c.train, 50), "%s: seeds 7 and 8 give the same training items",
          synth_datasets[d]);
    CHECK(!items_equal(a.train, a.test, 20), "%s: train and test are the same items",
          synth_datasets[d]);
    synth_free(&a);
    synth_free(&b);
    synth_free(&c);
  }
}

/* Every label is one of the task's, each occurs floor(n/L) or ceil(n/L) times, and the rule
 * oracle (the documented rule applied to the sentence) gives the item's label. */
static void check_split(const cl_task *t, const cl_item *items, int n, const char *split) {
  int count[16] = {0}, bad_label = 0, bad_rule = 0;
  for (int i = 0; i < n; i++) {
    int k = -1;
    for (int j = 0; j < t->n_labels; j++)
      if (!strcmp(items[i].label, t->labels[j])) k = j;
    if (k < 0) {
      if (!bad_label++)
        printf("  %s %s item %d: label '%s' is not a task label\n", t->dataset, split, i,
               items[i].label);
      continue;
    }
    count[k]++;
    const char *want = NULL;
    int rc = synth_apply_rule(t->dataset, items[i].sentence, &want);
    if (rc || strcmp(want, items[i].label)) {
      if (!bad_rule++)
        printf("  %s %s item %d: rule says %s, label %s: %s\n", t->dataset, split, i,
               rc ? "(error)" : want, items[i].label, items[i].sentence);
    }
  }
  CHECK(!bad_label, "%s %s: %d items with a foreign label", t->dataset, split, bad_label);
  CHECK(!bad_rule, "%s %s: %d items against the documented rule", t->dataset, split, bad_rule);
  int lo = n / t->n_labels, hi = (n + t->n_labels - 1) / t->n_labels;
  for (int j = 0; j < t->n_labels; j++)
    CHECK(count[j] >= lo && count[j] <= hi, "%s %s: label %s occurs %d times (want %d..%d)",
          t->dataset, split, t->labels[j], count[j], lo, hi);
}

static void test_labels_are_the_tasks_balanced_and_follow_the_rule(void) {
  for (int d = 0; d < SYNTH_N_DATASETS; d++) {
    cl_task t;
    if (synth_load(&t, synth_datasets[d], 3, 503, 97)) {
      CHECK(0, "%s does not load", synth_datasets[d]);
      continue;
    }
    CHECK(t.n_train == 503 && t.n_test == 97 && t.n_test_unlabelled == 0, "%s sizes %d %d",
          t.dataset, t.n_train, t.n_test);
    CHECK(!strcmp(t.dataset, synth_datasets[d]), "dataset %s", t.dataset);
    CHECK((t.instruction == NULL) == !strcmp(t.task_type, "COPA"), "%s instruction", t.dataset);
    check_split(&t, t.train, t.n_train, "train");
    check_split(&t, t.test, t.n_test, "test");
    synth_free(&t);
  }
}

/* Labels read from the benchmark's labels.json files (hard-coded in synth.c). */
static void test_label_words_are_the_benchmarks(void) {
  static const struct {
    const char *dataset, *type, *labels;
  } want[] = {
      {"syn-dbpedia", "TC",
       "Company|Educational Institution|Artist|Athlete|Office Holder|Mean of Transportation|"
       "Building|Natural Place|Village|Animal|Plant|Album|Film|Written Work"},
      {"syn-amazon", "SC", "very negative|negative|neutral|positive|very positive"},
      {"syn-yahoo", "TC",
       "Society & Culture|Science & Mathematics|Health|Education & Reference|Computers & Internet|"
       "Sports|Business & Finance|Entertainment & Music|Family & Relationships|Politics & "
       "Government"},
      {"syn-agnews", "TC", "World|Sports|Business|Science or Technology"},
      {"syn-MNLI", "NLI", "neutral|entailment|contradiction"},
      {"syn-CB", "NLI", "entailment|contradiction|neutral"},
      {"syn-WiC", "WiC", "True|False"},
      {"syn-COPA", "COPA", "A|B"},
      {"syn-QQP", "QQP", "False|True"},
      {"syn-BoolQA", "BoolQA", "True|False"},
      {"syn-RTE", "NLI", "contradiction|entailment"},
      {"syn-IMDB", "SC", "Good|Bad"},
      {"syn-yelp", "SC", "very negative|negative|neutral|positive|very positive"},
      {"syn-SST-2", "SC", "Good|Bad"},
      {"syn-MultiRC", "MultiRC", "False|True"},
  };
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    cl_task t;
    if (synth_load(&t, want[i].dataset, 0, 1, 1)) {
      CHECK(0, "%s does not load", want[i].dataset);
      continue;
    }
    char joined[1024] = "";
    for (int j = 0; j < t.n_labels; j++) {
      if (j) strcat(joined, "|");
      strcat(joined, t.labels[j]);
    }
    CHECK(!strcmp(joined, want[i].labels), "%s labels %s", want[i].dataset, joined);
    CHECK(!strcmp(t.task_type, want[i].type), "%s type %s", want[i].dataset, t.task_type);
    synth_free(&t);
  }
}

static void test_every_dataset_of_the_six_orders_loads(void) {
  static const char *const want[6] = {
      "dbpedia amazon yahoo agnews",
      "dbpedia amazon agnews yahoo",
      "yahoo amazon agnews dbpedia",
      "MNLI CB WiC COPA QQP BoolQA RTE IMDB yelp amazon SST-2 dbpedia agnews MultiRC yahoo",
      "MultiRC BoolQA WiC MNLI CB COPA QQP RTE IMDB SST-2 dbpedia agnews yelp amazon yahoo",
      "yelp amazon MNLI CB COPA QQP RTE IMDB SST-2 dbpedia agnews yahoo MultiRC BoolQA WiC"};
  for (int o = 0; o < SYNTH_N_ORDERS; o++) {
    char name[16], joined[512] = "";
    snprintf(name, sizeof name, "order%d", o + 1);
    const char *const *tasks;
    int n = 0;
    if (synth_order(name, &tasks, &n)) {
      CHECK(0, "%s is unknown", name);
      continue;
    }
    for (int i = 0; i < n; i++) {
      CHECK(!strncmp(tasks[i], "syn-", 4), "%s task %s", name, tasks[i]);
      if (i) strcat(joined, " ");
      strcat(joined, tasks[i] + 4);
      cl_task t;
      int rc = synth_load(&t, tasks[i], 1, 20, 10);
      CHECK(!rc && t.n_train == 20, "%s: %s does not load", name, tasks[i]);
      if (!rc) synth_free(&t);
    }
    CHECK(!strcmp(joined, want[o]), "%s is %s", name, joined);
  }
}

static void test_unknown_names_fail_naming_them(void) {
  cl_task t;
  const char *const *tasks = NULL;
  int n = -1;
  capture_begin();
  int rc_ds = synth_load(&t, "syn-nosuch", 0, 10, 10);
  int rc_real = synth_load(&t, "dbpedia", 0, 10, 10);
  int rc_n = synth_load(&t, "syn-CB", 0, 0, 10);
  int rc_order = synth_order("order7", &tasks, &n);
  const char *label = NULL;
  int rc_rule = synth_apply_rule("syn-dbpedia", "Title: dax fep\nText: gim .", &label);
  char *msg = capture_end();
  CHECK(rc_ds == GORP_EINPUT && strstr(msg, "'syn-nosuch' is unknown"), "rc %d: %s", rc_ds, msg);
  CHECK(rc_real == GORP_EINPUT && strstr(msg, "'dbpedia' is unknown"), "rc %d", rc_real);
  CHECK(rc_n == GORP_EINPUT && strstr(msg, "syn-CB: n_train 0"), "rc %d: %s", rc_n, msg);
  CHECK(rc_order == GORP_EINPUT && strstr(msg, "'order7'") && n == -1, "rc %d", rc_order);
  CHECK(rc_rule == GORP_EINPUT && strstr(msg, "no decisive word"), "rc %d", rc_rule);
  CHECK(t.n_train == 0 && t.train == NULL, "a failed load leaves the task empty");
  CHECK(synth_is_dataset("syn-SST-2") && !synth_is_dataset("SST-2"), "synth_is_dataset");
  free(msg);
}

/* Same topic words, different labels: the suite's interference. */
static void test_shared_words_carry_different_labels(void) {
  const char *db = synth_rule_label("syn-dbpedia", SYNTH_FAM_TOPIC, 3);
  const char *ya = synth_rule_label("syn-yahoo", SYNTH_FAM_TOPIC, 3);
  const char *ag = synth_rule_label("syn-agnews", SYNTH_FAM_TOPIC, 0);
  const char *cb = synth_rule_label("syn-CB", SYNTH_FAM_TOPIC, 0);
  CHECK(db && ya && !strcmp(db, "Athlete") && !strcmp(ya, "Sports"), "group 3: %s %s", db, ya);
  CHECK(ag && cb && !strcmp(ag, "Business") && !strcmp(cb, "entailment"), "group 0: %s %s", ag, cb);
  CHECK(!synth_rule_label("syn-dbpedia", SYNTH_FAM_TOPIC, 14), "dbpedia never draws group 14");
  CHECK(!synth_rule_label("syn-dbpedia", SYNTH_FAM_POLARITY, 0), "dbpedia reads topics only");
  CHECK(synth_task_family("syn-RTE") == SYNTH_FAM_MARKER && synth_task_family("x") == -1,
        "families");
  /* the decisive words of every family occur as noise in tasks of another family */
  int fam_seen[SYNTH_N_FAMILIES][SYNTH_N_FAMILIES] = {{0}};
  for (int d = 0; d < SYNTH_N_DATASETS; d++) {
    cl_task t;
    if (synth_load(&t, synth_datasets[d], 5, 60, 1)) continue;
    int own = synth_task_family(t.dataset);
    for (int i = 0; i < t.n_train; i++) {
      char *w[256];
      int n = split_tokens(t.train[i].sentence, w, 256);
      for (int k = 0; k < n && k < 256; k++) {
        int f, c;
        if (synth_word_concept(w[k], &f, &c)) fam_seen[own][f] = 1;
      }
      free_words(w, n < 256 ? n : 256);
    }
    synth_free(&t);
  }
  CHECK(fam_seen[SYNTH_FAM_POLARITY][SYNTH_FAM_TOPIC] &&
            fam_seen[SYNTH_FAM_TOPIC][SYNTH_FAM_POLARITY] &&
            fam_seen[SYNTH_FAM_ENTITY][SYNTH_FAM_TOPIC] &&
            fam_seen[SYNTH_FAM_TOPIC][SYNTH_FAM_ENTITY],
        "topic, polarity and entity words appear as noise in the other families' tasks");
}

/* ---- prompts ---------------------------------------------------------------------------------
 */

static void test_prompt_scaffold_of_each_task_type(void) {
  static const char *const one_per_type[] = {"syn-dbpedia", "syn-amazon", "syn-MNLI",
                                             "syn-QQP",     "syn-BoolQA", "syn-COPA",
                                             "syn-WiC",     "syn-MultiRC"};
  for (size_t k = 0; k < sizeof one_per_type / sizeof *one_per_type; k++) {
    cl_task t;
    if (synth_load(&t, one_per_type[k], 11, 4, 1)) {
      CHECK(0, "%s does not load", one_per_type[k]);
      continue;
    }
    prompt_parts p;
    if (prompt_parts_make(&p, &t, t.train[0].sentence)) {
      CHECK(0, "%s: prompt_parts_make failed", t.dataset);
      synth_free(&t);
      continue;
    }
    char want[2048];
    int w = snprintf(want, sizeof want, "Task:%s\nDataset:%s\n", t.task_type, t.dataset);
    if (strcmp(t.task_type, "COPA")) {
      w += snprintf(want + w, sizeof want - (size_t)w, "%sOption: ", t.instruction);
      for (int j = 0; j < t.n_labels; j++)
        w += snprintf(want + w, sizeof want - (size_t)w, "%s%s", j ? ", " : "", t.labels[j]);
      snprintf(want + w, sizeof want - (size_t)w, " \n");
    }
    CHECK(!strcmp(p.prefix, want), "%s prefix:\n%s\nwant:\n%s", t.dataset, p.prefix, want);
    CHECK(!strcmp(p.suffix, "\nAnswer:"), "%s suffix", t.dataset);
    CHECK(t.instruction == NULL || (strstr(t.instruction, "? Choose one from the option.\n") &&
                                    t.instruction[strlen(t.instruction) - 1] == '\n'),
          "%s instruction ends like the benchmark's", t.dataset);
    printf("---- %s prompt, answer \"%s\":\n%s%s%s\n", t.task_type, t.train[0].label, p.prefix,
           p.sentence, p.suffix);
    prompt_parts_free(&p);
    synth_free(&t);
  }
  /* instructions differ between the datasets of a task type */
  cl_task a, b;
  if (!synth_load(&a, "syn-dbpedia", 0, 1, 1)) {
    if (!synth_load(&b, "syn-agnews", 0, 1, 1)) {
      CHECK(strcmp(a.instruction, b.instruction), "dbpedia and agnews share an instruction");
      synth_free(&b);
    }
    synth_free(&a);
  }
}

/* ---- tokenizer -------------------------------------------------------------------------------
 */

/* Encodes text, checks it has no <unk> and decodes to canon(text); returns the token count. */
static int round_trip(const tokenizer *tok, const char *what, const char *text, int *bad) {
  int ids[2048], n = 0;
  if (tokenizer_encode(tok, text, ids, &n, 2048)) {
    if (!(*bad)++) printf("  %s: encode failed: %s\n", what, text);
    return 0;
  }
  int unk = 0;
  for (int i = 0; i < n; i++) unk += ids[i] == 0 || ids[i] >= tok->vocab_size;
  char *dec = NULL, *want = canon(text);
  int rc = tokenizer_decode(tok, ids, n, &dec);
  if (unk || rc || strcmp(dec, want)) {
    if (!(*bad)++)
      printf("  %s: %d unk, decode rc %d:\n  text: %s\n  dec:  %s\n  want: %s\n", what, unk, rc,
             text, dec ? dec : "", want);
  }
  free(dec);
  free(want);
  return n;
}

static int open_written(tokenizer *tok, char *path) {
  fmt_path(path, "%s/tokenizer.json", tmp_dir);
  int rc = synth_write_tokenizer(path);
  CHECK(rc == GORP_OK, "synth_write_tokenizer rc %d", rc);
  if (rc) return rc;
  rc = tokenizer_open(tok, path);
  CHECK(rc == GORP_OK, "tokenizer_open of the written file rc %d", rc);
  return rc;
}

static void test_tokenizer_round_trips_every_prompt_without_unk(void) {
  tokenizer tok;
  char path[PATH_MAX], tmp[PATH_MAX];
  if (open_written(&tok, path)) return;
  fmt_path(tmp, "%s.tmp", path);
  CHECK(access(tmp, F_OK) != 0, "the temporary file is gone after the rename");
  CHECK(tok.kind == TOKENIZER_WORDLEVEL && tok.vocab_size == synth_vocab_size(),
        "kind %d vocab %d vs %d", tok.kind, tok.vocab_size, synth_vocab_size());
  CHECK(tok.bos_id == 1 && tok.eos_id == 2 && tok.pad_id == 3, "specials %d %d %d", tok.bos_id,
        tok.eos_id, tok.pad_id);
  printf("vocabulary: %d tokens\n", tok.vocab_size);
  int bad = 0, total_items = 0;
  for (int d = 0; d < SYNTH_N_DATASETS; d++) {
    cl_task t;
    if (synth_load(&t, synth_datasets[d], 2, 400, 100)) {
      CHECK(0, "%s does not load", synth_datasets[d]);
      continue;
    }
    int lo = 1 << 30, hi = 0, max_ans = 0;
    long sum = 0;
    for (int i = 0; i < t.n_train + t.n_test; i++) {
      const cl_item *it = i < t.n_train ? &t.train[i] : &t.test[i - t.n_train];
      char *text = prompt_text(&t, it, 1);
      int n = round_trip(&tok, t.dataset, text, &bad);
      free(text);
      /* the runner's own layout: [BOS] prompt " "+label [EOS], no unk anywhere */
      int ids[2048], tg[2048], m = 0, unk = 0;
      if (prompt_encode_train(&tok, &t, it, 1000, 50, ids, tg, &m, 2048)) bad++;
      for (int k = 0; k < m; k++) unk += ids[k] == 0;
      bad += unk > 0;
      int ans = 0;
      for (int k = 0; k < m; k++) ans += tg[k] >= 0;
      if (ans > max_ans) max_ans = ans;
      lo = n < lo ? n : lo;
      hi = n > hi ? n : hi;
      sum += n;
      total_items++;
    }
    for (int j = 0; j < t.n_labels; j++) { /* a label decodes to itself */
      int ids[64], m = 0;
      char *dec = NULL;
      if (tokenizer_encode(&tok, t.labels[j], ids, &m, 64) ||
          tokenizer_decode(&tok, ids, m, &dec) || strcmp(dec, t.labels[j]))
        if (!bad++) printf("  label '%s' decodes to '%s'\n", t.labels[j], dec ? dec : "");
      free(dec);
    }
    printf("  %-12s prompt+answer tokens %d..%d (mean %.1f), answer+EOS tokens <= %d\n", t.dataset,
           lo, hi, (double)sum / (t.n_train + t.n_test), max_ans);
    synth_free(&t);
  }
  for (uint64_t i = 0; i < 3000; i++) {
    synth_example e;
    if (synth_pretrain_example(&e, 2, i)) {
      bad++;
      continue;
    }
    size_t len = strlen(e.prompt) + strlen(e.answer) + 2;
    char *text = malloc(len);
    snprintf(text, len, "%s %s", e.prompt, e.answer);
    round_trip(&tok, "pretraining", text, &bad);
    free(text);
    synth_example_free(&e);
  }
  CHECK(!bad, "%d of %d items (+3000 pretraining examples) failed the round trip", bad,
        total_items);
  tokenizer_free(&tok);
}

static void test_tokenizer_write_fails_cleanly(void) {
  char path[PATH_MAX];
  fmt_path(path, "%s/no/such/dir/tokenizer.json", tmp_dir);
  capture_begin();
  int rc = synth_write_tokenizer(path);
  char *msg = capture_end();
  CHECK(rc == GORP_EIO && strstr(msg, "no/such/dir/tokenizer.json"), "rc %d: %s", rc, msg);
  free(msg);
}

/* Made-up words are distinct from each other and from the scaffold's words. */
static void test_made_up_words_do_not_collide(void) {
  tokenizer tok;
  char path[PATH_MAX];
  if (open_written(&tok, path)) return;
  int n_concept_words = 0;
  for (int id = 4; id < tok.vocab_size; id++) {
    char *s = NULL;
    if (tokenizer_decode(&tok, &id, 1, &s)) continue;
    int f, c;
    n_concept_words += synth_word_concept(s, &f, &c);
    free(s);
  }
  /* 17x6 topic + 5x5 polarity + 4x5 entity + 3 marker words, each its own token */
  CHECK(n_concept_words == 102 + 25 + 20 + 3, "%d concept words in the vocabulary",
        n_concept_words);
  int bad = 0;
  for (int d = 0; d < SYNTH_N_DATASETS; d++) {
    cl_task t;
    if (synth_load(&t, synth_datasets[d], 0, 1, 1)) continue;
    prompt_parts p;
    if (!prompt_parts_make(&p, &t, "")) {
      char *w[256];
      int n = split_tokens(p.prefix, w, 256);
      for (int k = 0; k < n && k < 256; k++) {
        int f, c, in_label = 0;
        for (int j = 0; j < t.n_labels; j++) in_label |= strstr(t.labels[j], w[k]) != NULL;
        if (synth_word_concept(w[k], &f, &c) || (!in_label && synth_name_concept(w[k], &f, &c))) {
          if (!bad++) printf("  scaffold word '%s' of %s is a made-up word\n", w[k], t.dataset);
        }
      }
      free_words(w, n < 256 ? n : 256);
      prompt_parts_free(&p);
    }
    synth_free(&t);
  }
  CHECK(!bad, "%d scaffold words collide with made-up words", bad);
  tokenizer_free(&tok);
}

/* ---- pretraining mix -------------------------------------------------------------------------
 */

/* Every CL label string names exactly one pretraining concept, never the one a task's rule
 * gives it. */
static void test_cl_label_names_are_unrelated_concepts(void) {
  int bad = 0;
  for (int d = 0; d < SYNTH_N_DATASETS; d++) {
    cl_task t;
    if (synth_load(&t, synth_datasets[d], 0, 1, 1)) continue;
    for (int j = 0; j < t.n_labels; j++) {
      int f, c;
      if (!synth_name_concept(t.labels[j], &f, &c)) {
        if (!bad++) printf("  label %s names no concept\n", t.labels[j]);
        continue;
      }
      for (int e = 0; e < SYNTH_N_DATASETS; e++) {
        const char *rule = synth_rule_label(synth_datasets[e], f, c);
        if (rule && !strcmp(rule, t.labels[j]))
          if (!bad++)
            printf("  label %s names concept %d/%d, which %s calls %s\n", t.labels[j], f, c,
                   synth_datasets[e], rule);
      }
    }
    synth_free(&t);
  }
  CHECK(!bad, "%d CL label strings are unassigned or related", bad);
}

/* Option names of an option prompt: between "Option: " and " \n", split at ", ". */
static int parse_options(const char *prompt, char opts[16][64]) {
  const char *a = strstr(prompt, "Option: "), *b = a ? strstr(a, " \n") : NULL;
  if (!a || !b) return -1;
  a += strlen("Option: ");
  int n = 0;
  while (a < b && n < 16) {
    const char *c = strstr(a, ", ");
    if (!c || c > b) c = b;
    snprintf(opts[n++], 64, "%.*s", (int)(c - a), a);
    a = c + (c == b ? 0 : 2);
    if (c == b) break;
  }
  return n;
}

/* 1 when s is a label of some task; *family, *concept: the concept it names in pretraining. */
static int is_cl_label(const char *s) {
  for (int d = 0; d < SYNTH_N_DATASETS; d++)
    for (int fam = 0; fam < SYNTH_N_FAMILIES; fam++)
      for (int c = 0; c < 17; c++) {
        const char *l = synth_rule_label(synth_datasets[d], fam, c);
        if (l && !strcmp(l, s)) return 1;
      }
  return 0;
}

static void test_pretraining_mix_has_the_documented_shape(void) {
  int n_lm = 0, n_opt = 0, bad = 0, det_bad = 0, by_size[13] = {0}, fam_asked[3] = {0};
  int has_cl[SYNTH_N_FAMILIES][32] = {{0}}, n_cl_concept = 0, n_cl_answer = 0;
  for (int d = 0; d < SYNTH_N_DATASETS; d++)
    for (int fam = 0; fam < SYNTH_N_FAMILIES; fam++)
      for (int c = 0; c < 17; c++) {
        const char *l = synth_rule_label(synth_datasets[d], fam, c);
        int f2, c2;
        if (l && synth_name_concept(l, &f2, &c2)) has_cl[f2][c2] = 1;
      }
  const int N = 4000;
  for (int i = 0; i < N; i++) {
    synth_example e, e2;
    if (synth_pretrain_example(&e, 9, (uint64_t)i) || synth_pretrain_example(&e2, 9, (uint64_t)i)) {
      bad++;
      continue;
    }
    det_bad += strcmp(e.prompt, e2.prompt) || strcmp(e.answer, e2.answer) || e.kind != e2.kind;
    synth_example_free(&e2);
    if (e.kind == SYNTH_EX_LM) {
      n_lm++;
      if (e.prompt[0] || !e.answer[0]) bad++;
      synth_example_free(&e);
      continue;
    }
    n_opt++;
    char opts[16][64];
    int k = parse_options(e.prompt, opts), hits = 0;
    if (k < 3 || k > 12) {
      if (!bad++) printf("  %d options: %s\n", k, e.prompt);
      synth_example_free(&e);
      continue;
    }
    by_size[k]++;
    /* concepts present in the sentence (the text after the Option line) */
    int present[SYNTH_N_FAMILIES][32] = {{0}}, n_present = 0;
    char *w[256];
    const char *sent = strstr(e.prompt, " \n") + 2;
    int nw = split_tokens(sent, w, 256);
    for (int j = 0; j < nw && j < 256; j++) {
      int f, c;
      if (synth_word_concept(w[j], &f, &c)) {
        n_present += !present[f][c];
        present[f][c] = 1;
      }
    }
    free_words(w, nw < 256 ? nw : 256);
    if (n_present != 1 && !bad++)
      printf("  %d concepts in the sentence:\n%s\n", n_present, e.prompt);
    for (int j = 0; j < k; j++) {
      int f, c;
      if (!synth_name_concept(opts[j], &f, &c)) {
        if (!bad++) printf("  option '%s' names no concept\n", opts[j]);
        continue;
      }
      for (int j2 = 0; j2 < j; j2++)
        if (!strcmp(opts[j], opts[j2]) && !bad++) printf("  option %s listed twice\n", opts[j]);
      int is_answer = !strcmp(opts[j], e.answer);
      hits += is_answer;
      if (is_answer != present[f][c]) {
        if (!bad++)
          printf("  option '%s' (answer %d) present %d:\n%s\n", opts[j], is_answer, present[f][c],
                 e.prompt);
      }
      if (is_answer && f < 3) fam_asked[f]++;
      if (is_answer && has_cl[f][c]) {
        n_cl_concept++;
        n_cl_answer += is_cl_label(opts[j]);
      }
    }
    if (hits != 1 && !bad++) printf("  the answer is listed %d times\n", hits);
    synth_example_free(&e);
  }
  printf("pretraining mix: %d LM, %d option examples; asked topic %d polarity %d entity %d\n", n_lm,
         n_opt, fam_asked[0], fam_asked[1], fam_asked[2]);
  CHECK(!bad && !det_bad, "%d malformed examples, %d not deterministic", bad, det_bad);
  CHECK(n_lm > 0.175 * N && n_lm < 0.225 * N, "LM share %d of %d", n_lm, N);
  const double share[3] = {1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0};
  for (int f = 0; f < 3; f++)
    CHECK(fabs((double)fam_asked[f] / n_opt - share[f]) < 0.03, "family %d asked %d of %d", f,
          fam_asked[f], n_opt);
  CHECK(fabs((double)n_cl_answer / n_cl_concept - 2.0 / 3.0) < 0.04,
        "%d of %d answers of concepts with label names are label names", n_cl_answer, n_cl_concept);
  for (int k = 3; k <= 12; k++) CHECK(by_size[k] > 0, "no example with %d options", k);
  synth_example e;
  int found_diff = 0;
  for (uint64_t i = 0; i < 20 && !found_diff; i++) {
    synth_example a;
    if (synth_pretrain_example(&a, 9, i) || synth_pretrain_example(&e, 10, i)) break;
    found_diff = strcmp(a.answer, e.answer) || strcmp(a.prompt, e.prompt);
    synth_example_free(&a);
    synth_example_free(&e);
  }
  CHECK(found_diff, "seeds 9 and 10 give the same pretraining examples");
}

/* ---- driver mode -----------------------------------------------------------------------------
 */

static void add_case(cJSON *texts, cJSON *ids, cJSON *decoded, const tokenizer *tok,
                     const char *text) {
  int buf[2048], n = 0;
  char *dec = NULL;
  if (tokenizer_encode(tok, text, buf, &n, 2048) || tokenizer_decode(tok, buf, n, &dec)) return;
  cJSON_AddItemToArray(texts, cJSON_CreateString(text));
  cJSON_AddItemToArray(ids, cJSON_CreateIntArray(buf, n));
  cJSON_AddItemToArray(decoded, cJSON_CreateString(dec));
  free(dec);
}

static int run_driver(const char *out_dir) {
  char path[PATH_MAX];
  fmt_path(path, "%s/tokenizer.json", out_dir);
  tokenizer tok;
  if (synth_write_tokenizer(path) || tokenizer_open(&tok, path)) return 1;
  cJSON *root = cJSON_CreateObject(), *texts = cJSON_AddArrayToObject(root, "texts");
  cJSON *ids = cJSON_AddArrayToObject(root, "ids"), *dec = cJSON_AddArrayToObject(root, "decoded");
  for (int d = 0; d < SYNTH_N_DATASETS; d++) {
    cl_task t;
    if (synth_load(&t, synth_datasets[d], 4, 40, 10)) continue;
    for (int i = 0; i < 50; i++) {
      const cl_item *it = i < 40 ? &t.train[i] : &t.test[i - 40];
      for (int with = 0; with < 2; with++) {
        char *text = prompt_text(&t, it, with);
        add_case(texts, ids, dec, &tok, text);
        free(text);
      }
    }
    synth_free(&t);
  }
  for (uint64_t i = 0; i < 400; i++) {
    synth_example e;
    if (synth_pretrain_example(&e, 4, i)) continue;
    size_t len = strlen(e.prompt) + strlen(e.answer) + 2;
    char *text = malloc(len);
    snprintf(text, len, "%s %s", e.prompt, e.answer);
    add_case(texts, ids, dec, &tok, text);
    free(text);
    synth_example_free(&e);
  }
  char *json = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  tokenizer_free(&tok);
  fmt_path(path, "%s/cases.json", out_dir);
  FILE *f = fopen(path, "w");
  int rc = !f || !json || fputs(json, f) < 0;
  if (f && fclose(f)) rc = 1;
  free(json);
  printf("driver: wrote %s/tokenizer.json and %s\n", out_dir, path);
  return rc;
}

int main(void) {
  setup_dir();
  test_generator_is_deterministic_for_a_seed();
  test_labels_are_the_tasks_balanced_and_follow_the_rule();
  test_label_words_are_the_benchmarks();
  test_every_dataset_of_the_six_orders_loads();
  test_unknown_names_fail_naming_them();
  test_shared_words_carry_different_labels();
  test_prompt_scaffold_of_each_task_type();
  test_tokenizer_round_trips_every_prompt_without_unk();
  test_tokenizer_write_fails_cleanly();
  test_made_up_words_do_not_collide();
  test_cl_label_names_are_unrelated_concepts();
  test_pretraining_mix_has_the_documented_shape();
  rm_tree(tmp_dir);
  const char *out = getenv("GORP_SYNTH_OUT");
  int rc = 0;
  if (out && out[0]) rc = run_driver(out);
  printf("%d passed, %d failed\n", n_pass, n_fail);
  return n_fail || rc ? 1 : 0;
}
