/* The synthetic continual-learning suite (see synth.h; docs/SYNTHETIC.md states every rule).
 *
 * Layout of this file: the made-up vocabulary (word = stem + ending, so a reader sees the group
 * of a word), the 15 task specs (label words, instruction, decisive family and the map from a
 * concept of that family to a label), the sentence templates, the seeded generator, the
 * pretraining mix, the tokenizer writer and the rule oracle used by the tests.
 *
 * Every rule is a single-token feature: the label is a function of the concept of the words of
 * one family (topic group, polarity level, entity class) or of whether a marker word occurs, and
 * every item holds words of that family from one label only. A bag of words decides it, which a
 * 2-layer model of about 100k parameters learns; the subset/overlap rules of the real pair tasks
 * stayed at chance at that size (docs/SYNTHETIC.md section 4).
 *
 * Randomness: draw j of item i of split s of dataset d is
 *   rng_bits(seed, RNG_STREAM_SYNTH, rng_bits(seed, RNG_STREAM_SYNTH, H(d) + s, i), j)
 * with H the 64-bit FNV-1a hash of the dataset name, so an item does not depend on any other. */
#include "gorp/synth.h"

#include "gorp/err.h"
#include "gorp/fsutil.h"
#include "gorp/rng.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------------
 * Made-up vocabulary. */
enum { N_TOPIC = 17, N_TOPIC_WORDS = 6, N_POL = 5, N_POL_WORDS = 5, N_ENT = 4, N_ENT_WORDS = 5 };
enum { N_FILL = 40, N_MARK = 3, MAX_CL_NAMES = 2 };
enum { N_CONCEPTS = N_TOPIC + N_POL + N_ENT }; /* pretraining concepts: topic, polarity, entity */

static const char *const topic_stem[N_TOPIC] = {"ba", "de", "fi", "go", "ku", "la",
                                                "me", "ni", "po", "ru", "sa", "te",
                                                "vi", "wo", "ya", "zu", "ha"};
static const char *const topic_end[N_TOPIC_WORDS] = {"rak", "lem", "sun", "dov", "pit", "gal"};
static const char *const pol_stem[N_POL] = {"mor", "nal", "tev", "sil", "jub"};
static const char *const pol_end[N_POL_WORDS] = {"ax", "ek", "ip", "ot", "un"};
static const char *const ent_stem[N_ENT] = {"Kar", "Bel", "Dun", "Os"};
static const char *const ent_end[N_ENT_WORDS] = {"ava", "ik", "om", "ero", "ul"};
static const char *const fillers[N_FILL] = {
    "dax",  "fep", "gim", "hob", "jut", "kef", "lod", "mux", "nep", "pof",
    "quib", "rab", "sek", "tiv", "vop", "wuz", "yad", "zel", "bim", "cud",
    "dof",  "gex", "hik", "jop", "kuv", "lup", "mib", "nox", "pim", "rel",
    "sut",  "tob", "vam", "wix", "yul", "zop", "bef", "dut", "fam", "gop"};
static const char *const markers[N_MARK] = {"nohr", "nult", "nazz"};
/* The made-up own name of a pretraining concept: its family's stem + this ending. */
static const char *const own_name_end[3] = {"zon", "ova", "ian"}; /* topic, polarity, entity */

/* CL label strings that name an unrelated pretraining concept (concept order: topic 0-16,
 * polarity 17-21, entity 22-25). String k of the labels in first-seen table order goes to the
 * first concept from (7k + 3) mod 26 on that holds fewer than two and that no task's rule gives
 * that string; tests/unit/test_synth.c checks both properties. */
static const char *const cl_names[N_CONCEPTS][MAX_CL_NAMES] = {
    {"Natural Place", "contradiction"},
    {NULL, NULL},
    {"Album", "Education & Reference"},
    {"Company", "Entertainment & Music"},
    {"negative", "B"},
    {"Office Holder", NULL},
    {NULL, NULL},
    {"Village", "Society & Culture"},
    {"Computers & Internet", "Business"},
    {"Film", "True"},
    {"Educational Institution", "Family & Relationships"},
    {"Good", NULL},
    {"Mean of Transportation", "neutral"},
    {"Science & Mathematics", NULL},
    {"Animal", "False"},
    {"Sports", "Science or Technology"},
    {"Written Work", "Bad"},
    {"Artist", "Politics & Government"},
    {"positive", NULL},
    {"Building", "entailment"},
    {"Health", NULL},
    {"Plant", NULL},
    {"Business & Finance", "A"},
    {"very negative", NULL},
    {"Athlete", "World"},
    {"very positive", NULL},
};

static const int fam_size[SYNTH_N_FAMILIES] = {N_TOPIC, N_POL, N_ENT, 2};

/* ---------------------------------------------------------------------------------------------
 * Task specs. map[c] is the label index of concept c of the decisive family, -1 when the task
 * never draws c. */
enum {
  D_DBPEDIA,
  D_AMAZON,
  D_YAHOO,
  D_AGNEWS,
  D_MNLI,
  D_CB,
  D_WIC,
  D_COPA,
  D_QQP,
  D_BOOLQA,
  D_RTE,
  D_IMDB,
  D_YELP,
  D_SST2,
  D_MULTIRC
};
enum { MAX_LABELS = 14 };

typedef struct synth_spec {
  const char *name, *type, *instruction;
  const char *labels[MAX_LABELS];
  int n_labels;
  int family;
  signed char map[N_TOPIC];
} synth_spec;

#define CHOOSE " Choose one from the option.\n"
#define SENT5 "very negative", "negative", "neutral", "positive", "very positive"

static const synth_spec specs[SYNTH_N_DATASETS] = {
    {"syn-dbpedia",
     "TC",
     "What kind of thing does the following encyclopedia entry describe?" CHOOSE,
     {"Company", "Educational Institution", "Artist", "Athlete", "Office Holder",
      "Mean of Transportation", "Building", "Natural Place", "Village", "Animal", "Plant", "Album",
      "Film", "Written Work"},
     14,
     SYNTH_FAM_TOPIC,
     {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, -1, -1, -1}},
    {"syn-amazon",
     "SC",
     "How does the customer feel about the product in the following review?" CHOOSE,
     {SENT5},
     5,
     SYNTH_FAM_POLARITY,
     {0, 1, 2, 3, 4}},
    {"syn-yahoo",
     "TC",
     "Which forum category does the following question belong to?" CHOOSE,
     {"Society & Culture", "Science & Mathematics", "Health", "Education & Reference",
      "Computers & Internet", "Sports", "Business & Finance", "Entertainment & Music",
      "Family & Relationships", "Politics & Government"},
     10,
     SYNTH_FAM_TOPIC,
     {6, 3, 7, 5, 9, 4, 0, 1, 0, 1, 2, 7, 8, 3, 4, 2, 8}},
    {"syn-agnews",
     "TC",
     "Which news section does the following article belong to?" CHOOSE,
     {"World", "Sports", "Business", "Science or Technology"},
     4,
     SYNTH_FAM_TOPIC,
     {2, 3, 1, 1, 0, 2, 2, 0, 0, 3, 3, 1, 1, 3, 3, 2, 0}},
    {"syn-MNLI",
     "NLI",
     "What is the logical relationship between the \"sentence 1\" and the \"sentence 2\"?" CHOOSE,
     {"neutral", "entailment", "contradiction"},
     3,
     SYNTH_FAM_POLARITY,
     {2, 2, 0, 1, 1}},
    {"syn-CB",
     "NLI",
     "Is the \"sentence 2\" implied by the \"sentence 1\"?" CHOOSE,
     {"entailment", "contradiction", "neutral"},
     3,
     SYNTH_FAM_TOPIC,
     {0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1}},
    {"syn-WiC",
     "WiC",
     "Given a word and two sentences, whether the word is used with the same sense in both "
     "sentence?" CHOOSE,
     {"True", "False"},
     2,
     SYNTH_FAM_TOPIC,
     {0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0}},
    {"syn-COPA", "COPA", NULL, {"A", "B"}, 2, SYNTH_FAM_POLARITY, {1, 1, -1, 0, 0}},
    {"syn-QQP",
     "QQP",
     "Whether the \"first sentence\" and the \"second sentence\" have the same meaning?" CHOOSE,
     {"False", "True"},
     2,
     SYNTH_FAM_ENTITY,
     {1, 1, 0, 0}},
    {"syn-BoolQA",
     "BoolQA",
     "According to the following passage, is the question true or false?" CHOOSE,
     {"True", "False"},
     2,
     SYNTH_FAM_POLARITY,
     {1, 1, -1, 0, 0}},
    {"syn-RTE",
     "NLI",
     "Does the \"sentence 1\" entail the \"sentence 2\"?" CHOOSE,
     {"contradiction", "entailment"},
     2,
     SYNTH_FAM_MARKER,
     {1, 0}},
    {"syn-IMDB",
     "SC",
     "Is the following movie review good or bad?" CHOOSE,
     {"Good", "Bad"},
     2,
     SYNTH_FAM_POLARITY,
     {1, 1, -1, 0, 0}},
    {"syn-yelp",
     "SC",
     "What is the tone of the following restaurant review?" CHOOSE,
     {SENT5},
     5,
     SYNTH_FAM_POLARITY,
     {0, 1, 2, 3, 4}},
    {"syn-SST-2",
     "SC",
     "What is the sentiment of the following movie sentence?" CHOOSE,
     {"Good", "Bad"},
     2,
     SYNTH_FAM_POLARITY,
     {1, 1, -1, 0, 0}},
    {"syn-MultiRC",
     "MultiRC",
     "According to the following passage and question, is the candidate answer true or "
     "false?" CHOOSE,
     {"False", "True"},
     2,
     SYNTH_FAM_ENTITY,
     {1, 0, 1, 0}},
};

const char *const synth_datasets[SYNTH_N_DATASETS] = {
    "syn-dbpedia", "syn-amazon", "syn-yahoo", "syn-agnews", "syn-MNLI",
    "syn-CB",      "syn-WiC",    "syn-COPA",  "syn-QQP",    "syn-BoolQA",
    "syn-RTE",     "syn-IMDB",   "syn-yelp",  "syn-SST-2",  "syn-MultiRC"};

/* The pretraining mix's three option tasks, one per concept family. */
static const struct {
  const char *type, *dataset, *instruction;
} pre_tasks[3] = {
    {"TC", "syn-topics", "What is the topic of the following paragraph?" CHOOSE},
    {"SC", "syn-tones", "What is the sentiment of the following paragraph?" CHOOSE},
    {"TC", "syn-people", "Who is the following paragraph about?" CHOOSE},
};

/* Literal text of the prompt scaffold (prompt.c) and of the sentence templates below; the
 * tokenizer takes its tokens from here, so a template only uses these macros. */
#define T_TITLE "Title: "
#define T_TEXT "\nText: "
#define T_TEXT0 "Text: "
#define T_END " ."
#define T_QEND " ?"
#define T_S1 "sentence 1: "
#define T_S2 "\nsentence 2: "
#define T_FIRST "first sentence: "
#define T_SECOND "\nsecond sentence: "
#define T_QUESTION0 "question: "
#define T_PASSAGE "\npassage: "
#define T_WORD "word: "
#define T_NL "\n"
#define T_COPA_CAUSE "Which sentence is the cause of \""
#define T_COPA_EFFECT "Which sentence is the effect of \""
#define T_COPA_MID " .\"? Choose one between A and B.\nA: "
#define T_COPA_B "\nB: "
#define T_PARAGRAPH "paragraph: "
#define T_QUESTION "\nquestion: "
#define T_CANDIDATE "\ncandidate answer: "
static const char *const template_text[] = {
    "Task:",    "\nDataset:", "Option: ",  ", ",       " \n",      "\nAnswer:",  T_TITLE,
    T_TEXT,     T_TEXT0,      T_END,       T_QEND,     T_S1,       T_S2,         T_FIRST,
    T_SECOND,   T_QUESTION0,  T_PASSAGE,   T_WORD,     T_NL,       T_COPA_CAUSE, T_COPA_EFFECT,
    T_COPA_MID, T_COPA_B,     T_PARAGRAPH, T_QUESTION, T_CANDIDATE};

static const int order_len[SYNTH_N_ORDERS] = {4, 4, 4, 15, 15, 15};
static const char *const orders[SYNTH_N_ORDERS][SYNTH_N_DATASETS] = {
    {"syn-dbpedia", "syn-amazon", "syn-yahoo", "syn-agnews"},
    {"syn-dbpedia", "syn-amazon", "syn-agnews", "syn-yahoo"},
    {"syn-yahoo", "syn-amazon", "syn-agnews", "syn-dbpedia"},
    {"syn-MNLI", "syn-CB", "syn-WiC", "syn-COPA", "syn-QQP", "syn-BoolQA", "syn-RTE", "syn-IMDB",
     "syn-yelp", "syn-amazon", "syn-SST-2", "syn-dbpedia", "syn-agnews", "syn-MultiRC",
     "syn-yahoo"},
    {"syn-MultiRC", "syn-BoolQA", "syn-WiC", "syn-MNLI", "syn-CB", "syn-COPA", "syn-QQP", "syn-RTE",
     "syn-IMDB", "syn-SST-2", "syn-dbpedia", "syn-agnews", "syn-yelp", "syn-amazon", "syn-yahoo"},
    {"syn-yelp", "syn-amazon", "syn-MNLI", "syn-CB", "syn-COPA", "syn-QQP", "syn-RTE", "syn-IMDB",
     "syn-SST-2", "syn-dbpedia", "syn-agnews", "syn-yahoo", "syn-MultiRC", "syn-BoolQA", "syn-WiC"},
};

static int find_spec(const char *name) {
  for (int i = 0; name && i < SYNTH_N_DATASETS; i++)
    if (!strcmp(specs[i].name, name)) return i;
  return -1;
}

int synth_is_dataset(const char *name) {
  return find_spec(name) >= 0;
}

/* ---------------------------------------------------------------------------------------------
 * Seeded draws. */
typedef struct srng {
  uint64_t seed, key, ctr;
} srng;

static uint64_t fnv1a(const char *s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
  return h;
}

static srng sr_item(uint64_t seed, uint64_t base, uint64_t i) {
  return (srng){seed, rng_bits(seed, RNG_STREAM_SYNTH, base, i), 0};
}

static uint64_t sr_next(srng *r) {
  return rng_bits(r->seed, RNG_STREAM_SYNTH, r->key, r->ctr++);
}
/* Uniform in 0..n-1 (n is small: the modulo bias is below 2^-50). */
static int sr_int(srng *r, int n) {
  return (int)(sr_next(r) % (uint64_t)n);
}
static int sr_range(srng *r, int lo, int hi) {
  return lo + sr_int(r, hi - lo + 1);
}
static double sr_uniform(srng *r) {
  return (double)(sr_next(r) >> 11) * 0x1.0p-53;
}

/* Fisher-Yates from the back over perm[0..n). */
static void sr_shuffle(srng *r, int *perm, int n) {
  for (int i = n - 1; i > 0; i--) {
    int j = sr_int(r, i + 1), t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}

/* out[0..k) = k distinct values of 0..n-1 (n <= 64): the first k of a shuffle. */
static void sr_pick(srng *r, int n, int k, int *out) {
  int all[64];
  for (int i = 0; i < n; i++) all[i] = i;
  for (int i = 0; i < k; i++) {
    int j = i + sr_int(r, n - i), t = all[i];
    all[i] = all[j];
    all[j] = t;
    out[i] = all[i];
  }
}

/* ---------------------------------------------------------------------------------------------
 * Text building. A sentence is short by construction (at most 3 clauses of at most 16 words of
 * at most 15 bytes); the fixed buffer still checks. */
enum { BAG_MAX = 24, WORD_MAX = 16, SBUF_MAX = 4096 };

typedef struct sbuf {
  char b[SBUF_MAX];
  size_t n;
  int over;
} sbuf;

static void sb_put(sbuf *s, const char *text) {
  size_t len = strlen(text);
  if (s->n + len + 1 > SBUF_MAX) {
    s->over = 1;
    return;
  }
  memcpy(s->b + s->n, text, len + 1);
  s->n += len;
}

typedef struct bag {
  char w[BAG_MAX][WORD_MAX];
  int n;
} bag;

static void bag_add(bag *b, const char *stem, const char *end) {
  if (b->n < BAG_MAX) snprintf(b->w[b->n++], WORD_MAX, "%s%s", stem, end);
}
static void bag_topic(bag *b, srng *r, int group, int n) {
  int idx[N_TOPIC_WORDS];
  sr_pick(r, N_TOPIC_WORDS, n, idx);
  for (int i = 0; i < n; i++) bag_add(b, topic_stem[group], topic_end[idx[i]]);
}
static void bag_pol(bag *b, srng *r, int level) {
  bag_add(b, pol_stem[level], pol_end[sr_int(r, N_POL_WORDS)]);
}
static void bag_ent(bag *b, srng *r, int cls) {
  bag_add(b, ent_stem[cls], ent_end[sr_int(r, N_ENT_WORDS)]);
}
static void bag_fill(bag *b, srng *r, int n) {
  int idx[N_FILL];
  sr_pick(r, N_FILL, n, idx);
  for (int i = 0; i < n; i++) bag_add(b, fillers[idx[i]], "");
}
/* Shuffles the bag and appends words [from, to) joined by single spaces. */
static void bag_shuffle(bag *b, srng *r) {
  int perm[BAG_MAX];
  bag t = *b;
  for (int i = 0; i < b->n; i++) perm[i] = i;
  sr_shuffle(r, perm, b->n);
  for (int i = 0; i < b->n; i++) memcpy(b->w[i], t.w[perm[i]], WORD_MAX);
}
static void bag_emit(const bag *b, int from, int to, sbuf *s) {
  for (int i = from; i < to && i < b->n; i++) {
    if (i > from) sb_put(s, " ");
    sb_put(s, b->w[i]);
  }
}
static void bag_emit_all(bag *b, srng *r, sbuf *s) {
  bag_shuffle(b, r);
  bag_emit(b, 0, b->n, s);
}

/* A concept of map uniformly among those with label y. */
static int concept_for_label(const synth_spec *sp, srng *r, int y) {
  int cand[N_TOPIC], n = 0;
  for (int c = 0; c < fam_size[sp->family]; c++)
    if (sp->map[c] == y) cand[n++] = c;
  return cand[sr_int(r, n)];
}

static int maybe(srng *r) {
  return sr_int(r, 2);
}

/* "Title: w0 w1\nText: w2 .. ." from a shuffled bag. */
static void title_text(bag *b, srng *r, sbuf *s) {
  bag_shuffle(b, r);
  sb_put(s, T_TITLE);
  bag_emit(b, 0, 2, s);
  sb_put(s, T_TEXT);
  bag_emit(b, 2, b->n, s);
  sb_put(s, T_END);
}

/* Two sentences: open, bag a, mid, bag b, close (the layout of every two-part dataset). */
static void emit_pair(sbuf *s, srng *r, const char *open, bag *a, const char *mid, bag *b,
                      const char *close) {
  sb_put(s, open);
  bag_emit_all(a, r, s);
  sb_put(s, mid);
  bag_emit_all(b, r, s);
  sb_put(s, close);
}

/* The sentence of an item of dataset d whose decisive concept is c (see docs/SYNTHETIC.md). */
static void gen_sentence(int d, int c, srng *r, sbuf *s) {
  const synth_spec *sp = &specs[d];
  bag a = {0}, b = {0}, e = {0};
  int g = sr_int(r, N_TOPIC);
  switch (d) {
  case D_DBPEDIA:
  case D_AGNEWS:
  case D_YAHOO: /* topic group c decides; entity, polarity and fillers are noise */
    bag_ent(&a, r, sr_int(r, N_ENT));
    bag_topic(&a, r, c, sr_range(r, 2, 3));
    if (maybe(r)) bag_pol(&a, r, sr_int(r, N_POL));
    bag_fill(&a, r, sr_range(r, 3, 6));
    if (d == D_YAHOO) {
      bag_emit_all(&a, r, s);
      sb_put(s, T_QEND);
    } else {
      title_text(&a, r, s);
    }
    break;
  case D_AMAZON:
  case D_YELP: /* polarity level c decides; the topic group is noise */
    bag_ent(&a, r, sr_int(r, N_ENT));
    bag_topic(&a, r, g, sr_range(r, 2, 3));
    bag_pol(&a, r, c);
    bag_fill(&a, r, sr_range(r, 3, 6));
    if (d == D_AMAZON) {
      title_text(&a, r, s);
    } else {
      sb_put(s, T_TEXT0);
      bag_emit_all(&a, r, s);
      sb_put(s, T_END);
    }
    break;
  case D_SST2:
    if (maybe(r)) bag_ent(&a, r, sr_int(r, N_ENT));
    bag_topic(&a, r, g, sr_range(r, 1, 2));
    bag_pol(&a, r, c);
    bag_fill(&a, r, sr_range(r, 2, 4));
    sb_put(s, T_TEXT0);
    bag_emit_all(&a, r, s);
    sb_put(s, T_END);
    break;
  case D_IMDB: /* two polarity words, both of the label's levels */
    bag_ent(&a, r, sr_int(r, N_ENT));
    bag_topic(&a, r, g, sr_range(r, 2, 3));
    bag_pol(&a, r, c);
    bag_pol(&a, r, concept_for_label(sp, r, sp->map[c]));
    bag_fill(&a, r, sr_range(r, 4, 7));
    bag_emit_all(&a, r, s);
    sb_put(s, T_END);
    break;
  case D_MNLI: /* the polarity word of sentence 2 decides */
    bag_ent(&a, r, sr_int(r, N_ENT));
    bag_topic(&a, r, g, 2);
    bag_fill(&a, r, sr_range(r, 2, 4));
    bag_topic(&b, r, g, 1);
    bag_pol(&b, r, c);
    bag_fill(&b, r, sr_range(r, 2, 3));
    emit_pair(s, r, T_S1, &a, T_END T_S2, &b, T_END);
    break;
  case D_CB: /* the topic group of sentence 2 decides; sentence 1 has no topic word */
    bag_ent(&a, r, sr_int(r, N_ENT));
    bag_pol(&a, r, sr_int(r, N_POL));
    bag_fill(&a, r, sr_range(r, 3, 5));
    bag_topic(&b, r, c, 2);
    bag_fill(&b, r, sr_range(r, 2, 3));
    emit_pair(s, r, T_S1, &a, T_END T_S2, &b, T_END);
    break;
  case D_RTE: /* a negation marker in sentence 2 (c = 1) or one more filler (c = 0) */
    bag_ent(&a, r, sr_int(r, N_ENT));
    bag_topic(&a, r, g, 2);
    if (maybe(r)) bag_pol(&a, r, sr_int(r, N_POL));
    bag_fill(&a, r, sr_range(r, 3, 5));
    bag_topic(&b, r, g, 1);
    if (c) bag_add(&b, markers[sr_int(r, N_MARK)], "");
    bag_fill(&b, r, sr_range(r, 2, 4) + !c);
    emit_pair(s, r, T_S1, &a, T_END T_S2, &b, T_END);
    break;
  case D_QQP: /* the entity class of the first sentence decides */
    bag_ent(&a, r, c);
    bag_topic(&a, r, g, sr_range(r, 1, 2));
    bag_fill(&a, r, sr_range(r, 2, 4));
    bag_topic(&b, r, g, sr_range(r, 1, 2));
    if (maybe(r)) bag_pol(&b, r, sr_int(r, N_POL));
    bag_fill(&b, r, sr_range(r, 2, 4));
    emit_pair(s, r, T_FIRST, &a, T_QEND T_SECOND, &b, T_QEND);
    break;
  case D_BOOLQA: /* the polarity word of the question decides */
    bag_pol(&a, r, c);
    bag_topic(&a, r, g, 1);
    bag_fill(&a, r, sr_range(r, 2, 3));
    bag_ent(&b, r, sr_int(r, N_ENT));
    bag_topic(&b, r, g, sr_range(r, 2, 3));
    bag_fill(&b, r, sr_range(r, 4, 7));
    emit_pair(s, r, T_QUESTION0, &a, T_QEND T_PASSAGE, &b, T_END);
    break;
  case D_WIC: { /* the group of the marked word (the only topic word) decides */
    char w[WORD_MAX];
    snprintf(w, sizeof w, "%s%s", topic_stem[c], topic_end[sr_int(r, N_TOPIC_WORDS)]);
    bag_add(&a, w, "");
    if (maybe(r)) bag_ent(&a, r, sr_int(r, N_ENT));
    if (maybe(r)) bag_pol(&a, r, sr_int(r, N_POL));
    bag_fill(&a, r, sr_range(r, 3, 5));
    bag_add(&b, w, "");
    bag_fill(&b, r, sr_range(r, 3, 5));
    sb_put(s, T_WORD);
    sb_put(s, w);
    emit_pair(s, r, T_NL, &a, T_END T_NL, &b, T_END);
    break;
  }
  case D_COPA: { /* the polarity word of the premise decides: positive A, negative B */
    int g2 = sr_int(r, N_TOPIC);
    sb_put(s, maybe(r) ? T_COPA_EFFECT : T_COPA_CAUSE);
    bag_ent(&a, r, sr_int(r, N_ENT));
    bag_pol(&a, r, c);
    bag_topic(&a, r, g, 1);
    bag_fill(&a, r, sr_range(r, 2, 3));
    bag_topic(&b, r, g, sr_range(r, 1, 2));
    bag_fill(&b, r, sr_range(r, 2, 3));
    bag_topic(&e, r, g2, sr_range(r, 1, 2));
    bag_fill(&e, r, sr_range(r, 2, 3));
    bag_emit_all(&a, r, s);
    emit_pair(s, r, T_COPA_MID, &b, T_END T_COPA_B, &e, T_END);
    break;
  }
  case D_MULTIRC: /* the entity class of the candidate answer decides */
    bag_topic(&a, r, g, sr_range(r, 2, 3));
    if (maybe(r)) bag_pol(&a, r, sr_int(r, N_POL));
    bag_fill(&a, r, sr_range(r, 5, 8));
    bag_topic(&b, r, g, 1);
    bag_fill(&b, r, sr_range(r, 2, 3));
    bag_ent(&e, r, c);
    bag_fill(&e, r, sr_range(r, 1, 2));
    emit_pair(s, r, T_PARAGRAPH, &a, T_END T_QUESTION, &b, T_QEND T_CANDIDATE);
    bag_emit_all(&e, r, s);
    sb_put(s, T_END);
    break;
  }
}

/* ---------------------------------------------------------------------------------------------
 * Tasks. */
static int dup_text(const char *s, char **out) {
  size_t n = strlen(s) + 1;
  GORP_ALLOC(*out, n, "synthetic task text");
  memcpy(*out, s, n);
  return GORP_OK;
}

/* Items of one split: label of item i is labels[perm[i] mod L], perm a seeded permutation. */
static int gen_split(cl_item *items, int n, int d, uint64_t seed, uint64_t split) {
  const synth_spec *sp = &specs[d];
  const uint64_t base = fnv1a(sp->name) + split;
  int *perm;
  GORP_ALLOC(perm, n, "synthetic label order");
  for (int i = 0; i < n; i++) perm[i] = i;
  srng pr = {seed, rng_bits(seed, RNG_STREAM_SYNTH, base + 2, 0), 0};
  sr_shuffle(&pr, perm, n);
  int ierr = GORP_OK;
  for (int i = 0; i < n && !ierr; i++) {
    const int y = perm[i] % sp->n_labels;
    srng r = sr_item(seed, base, (uint64_t)i);
    sbuf s = {0};
    gen_sentence(d, concept_for_label(sp, &r, y), &r, &s);
    if (s.over) {
      ierr = GORP_ERROR(GORP_EINPUT, "%s item %d: the sentence outgrew %d bytes (a generator bug)",
                        sp->name, i, SBUF_MAX);
      break;
    }
    ierr = dup_text(s.b, &items[i].sentence);
    if (!ierr) ierr = dup_text(sp->labels[y], &items[i].label);
  }
  free(perm);
  return ierr;
}

static int fill_task(cl_task *t, int d, uint64_t seed, int n_train, int n_test) {
  const synth_spec *sp = &specs[d];
  snprintf(t->task_type, sizeof t->task_type, "%s", sp->type);
  snprintf(t->dataset, sizeof t->dataset, "%s", sp->name);
  if (sp->instruction) GORP_CALL(dup_text(sp->instruction, &t->instruction));
  GORP_ALLOC(t->labels, sp->n_labels, "synthetic labels");
  t->n_labels = sp->n_labels;
  for (int i = 0; i < sp->n_labels; i++) GORP_CALL(dup_text(sp->labels[i], &t->labels[i]));
  GORP_ALLOC(t->train, n_train, "synthetic training items");
  t->n_train = n_train;
  GORP_CALL(gen_split(t->train, n_train, d, seed, 0));
  GORP_ALLOC(t->test, n_test, "synthetic test items");
  t->n_test = n_test;
  GORP_CALL(gen_split(t->test, n_test, d, seed, 1));
  return GORP_OK;
}

int synth_load(cl_task *t, const char *dataset, uint64_t seed, int n_train, int n_test) {
  *t = (cl_task){0};
  const int d = find_spec(dataset);
  if (d < 0)
    GORP_ERR(GORP_EINPUT,
             "synthetic dataset '%s' is unknown (the suite has syn-dbpedia, syn-amazon, "
             "syn-yahoo, syn-agnews, syn-MNLI, syn-CB, syn-WiC, syn-COPA, syn-QQP, syn-BoolQA, "
             "syn-RTE, syn-IMDB, syn-yelp, syn-SST-2, syn-MultiRC)",
             dataset ? dataset : "(null)");
  if (n_train < 1 || n_train > 10000000 || n_test < 1 || n_test > 10000000)
    GORP_ERR(GORP_EINPUT, "synthetic dataset %s: n_train %d and n_test %d must be in 1..10000000",
             dataset, n_train, n_test);
  int ierr = fill_task(t, d, seed, n_train, n_test);
  if (ierr) {
    synth_free(t);
    GORP_ERR(ierr, "could not generate synthetic dataset %s", dataset);
  }
  return GORP_OK;
}

void synth_free(cl_task *t) {
  clbench_free(t);
}

int synth_order(const char *name, const char *const **tasks, int *n) {
  for (int i = 0; name && i < SYNTH_N_ORDERS; i++) {
    char want[16];
    snprintf(want, sizeof want, "order%d", i + 1);
    if (!strcmp(name, want)) {
      *tasks = orders[i];
      *n = order_len[i];
      return GORP_OK;
    }
  }
  GORP_ERR(GORP_EINPUT, "synthetic order '%s' is unknown (expected order1 .. order6)",
           name ? name : "(null)");
}

/* ---------------------------------------------------------------------------------------------
 * Pretraining concepts and their names. */
static int concept_family(int c, int *index) {
  if (c < N_TOPIC) {
    *index = c;
    return SYNTH_FAM_TOPIC;
  }
  if (c < N_TOPIC + N_POL) {
    *index = c - N_TOPIC;
    return SYNTH_FAM_POLARITY;
  }
  *index = c - N_TOPIC - N_POL;
  return SYNTH_FAM_ENTITY;
}

static int concept_id(int family, int index) {
  return family == SYNTH_FAM_TOPIC      ? index
         : family == SYNTH_FAM_POLARITY ? N_TOPIC + index
                                        : N_TOPIC + N_POL + index;
}

static int n_cl_names(int c) {
  return !!cl_names[c][0] + !!cl_names[c][1];
}

/* Name j of concept c: 0 its made-up own name, 1.. its CL label strings. */
static void concept_name(int c, int j, char out[WORD_MAX * 2]) {
  int k, f = concept_family(c, &k);
  if (j > 0) {
    snprintf(out, WORD_MAX * 2, "%s", cl_names[c][j - 1]);
    return;
  }
  const char *stem = f == SYNTH_FAM_TOPIC      ? topic_stem[k]
                     : f == SYNTH_FAM_POLARITY ? pol_stem[k]
                                               : ent_stem[k];
  snprintf(out, WORD_MAX * 2, "%s%s", stem, own_name_end[f]);
}

int synth_name_concept(const char *name, int *family, int *concept) {
  char buf[WORD_MAX * 2];
  for (int c = 0; name && c < N_CONCEPTS; c++)
    for (int j = 0; j <= n_cl_names(c); j++) {
      concept_name(c, j, buf);
      if (!strcmp(buf, name)) {
        *family = concept_family(c, concept);
        return 1;
      }
    }
  return 0;
}

/* Share of option examples that ask for each family (topic, polarity, entity). Shifting examples
 * to the topic family (0.5 or 0.6) raised its held-out accuracy at the others' expense and lowered
 * the total in the design check (docs/SYNTHETIC.md section 9). */
static const double pre_family_share[3] = {1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0};
/* Probability that a concept with CL label names is listed under one of them (else its own
 * name): the label strings are what fine-tuning has to read. */
static const double pre_cl_name_share = 2.0 / 3.0;

/* The option example: a sentence whose only concept words are 2-3 topic words of one group, one
 * polarity word or one entity word (the asked family, plus fillers); the options are that concept
 * and 2-11 concepts of any family that are absent, each under one of its names. */
static int pretrain_option(synth_example *e, srng *r) {
  const double u = sr_uniform(r);
  const int fam = u < pre_family_share[0]                         ? SYNTH_FAM_TOPIC
                  : u < pre_family_share[0] + pre_family_share[1] ? SYNTH_FAM_POLARITY
                                                                  : SYNTH_FAM_ENTITY;
  const int k = sr_int(r, fam_size[fam]), form = sr_int(r, 3);
  bag a = {0};
  if (fam == SYNTH_FAM_TOPIC) bag_topic(&a, r, k, sr_range(r, 2, 3));
  if (fam == SYNTH_FAM_POLARITY) bag_pol(&a, r, k);
  if (fam == SYNTH_FAM_ENTITY) bag_ent(&a, r, k);
  bag_fill(&a, r, sr_range(r, 3, 6));
  sbuf sent = {0};
  if (form == 0) {
    title_text(&a, r, &sent);
  } else if (form == 1) {
    sb_put(&sent, T_TEXT0);
    bag_emit_all(&a, r, &sent);
    sb_put(&sent, T_END);
  } else {
    bag_emit_all(&a, r, &sent);
    sb_put(&sent, T_QEND);
  }
  const int truth = concept_id(fam, k);
  int absent[N_CONCEPTS], n_absent = 0;
  for (int c = 0; c < N_CONCEPTS; c++)
    if (c != truth) absent[n_absent++] = c;
  const int k_opt = sr_range(r, 3, 12);
  int pick[N_CONCEPTS], opt[12];
  sr_pick(r, n_absent, k_opt - 1, pick);
  opt[0] = truth;
  for (int i = 1; i < k_opt; i++) opt[i] = absent[pick[i - 1]];
  sr_shuffle(r, opt, k_opt);
  sbuf p = {0};
  char name[WORD_MAX * 2], answer[WORD_MAX * 2] = "";
  sb_put(&p, "Task:");
  sb_put(&p, pre_tasks[fam].type);
  sb_put(&p, "\nDataset:");
  sb_put(&p, pre_tasks[fam].dataset);
  sb_put(&p, "\n");
  sb_put(&p, pre_tasks[fam].instruction);
  sb_put(&p, "Option: ");
  for (int i = 0; i < k_opt; i++) {
    const int n_cl = n_cl_names(opt[i]);
    concept_name(opt[i], n_cl && sr_uniform(r) < pre_cl_name_share ? 1 + sr_int(r, n_cl) : 0, name);
    if (i) sb_put(&p, ", ");
    sb_put(&p, name);
    if (opt[i] == truth) memcpy(answer, name, sizeof name);
  }
  sb_put(&p, " \n");
  sb_put(&p, sent.b);
  sb_put(&p, "\nAnswer:");
  if (p.over || sent.over)
    GORP_ERR(GORP_EINPUT, "a pretraining prompt outgrew %d bytes (a generator bug)", SBUF_MAX);
  e->kind = SYNTH_EX_OPTION;
  GORP_CALL(dup_text(p.b, &e->prompt));
  GORP_CALL(dup_text(answer, &e->answer));
  return GORP_OK;
}

/* The language-modelling example: the sentence of an item of a uniformly drawn task and label. */
static int pretrain_lm(synth_example *e, srng *r) {
  const int d = sr_int(r, SYNTH_N_DATASETS);
  const synth_spec *sp = &specs[d];
  sbuf s = {0};
  gen_sentence(d, concept_for_label(sp, r, sr_int(r, sp->n_labels)), r, &s);
  if (s.over)
    GORP_ERR(GORP_EINPUT, "a pretraining sentence outgrew %d bytes (a generator bug)", SBUF_MAX);
  e->kind = SYNTH_EX_LM;
  GORP_CALL(dup_text("", &e->prompt));
  GORP_CALL(dup_text(s.b, &e->answer));
  return GORP_OK;
}

int synth_pretrain_example(synth_example *e, uint64_t seed, uint64_t index) {
  *e = (synth_example){0};
  srng r = sr_item(seed, fnv1a("syn-pretrain"), index);
  int ierr = sr_uniform(&r) < 0.2 ? pretrain_lm(e, &r) : pretrain_option(e, &r);
  if (ierr) {
    synth_example_free(e);
    return ierr;
  }
  return GORP_OK;
}

void synth_example_free(synth_example *e) {
  free(e->prompt);
  free(e->answer);
  *e = (synth_example){0};
}

/* ---------------------------------------------------------------------------------------------
 * Words: the tokenizer's split and the concept of a word. */

/* ASCII \w (our texts are ASCII; the tokenizer's regex is the same there). */
static int is_word_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}
static int is_space(unsigned char c) {
  return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Next token of s at *pos as the Split regex \w+|[^\w\s]|\n cuts it; 0 at the end. */
static int next_word(const char *s, size_t *pos, size_t *start, size_t *len) {
  size_t i = *pos;
  while (s[i] && s[i] != '\n' && is_space((unsigned char)s[i])) i++;
  if (!s[i]) return 0;
  *start = i;
  if (is_word_char((unsigned char)s[i]))
    while (is_word_char((unsigned char)s[i])) i++;
  else
    i++;
  *len = i - *start;
  *pos = i;
  return 1;
}

/* 1 when w is stem + end for some stem (index *si) and end (index *ei). */
static int split_match(const char *w, size_t len, const char *const *stems, int ns,
                       const char *const *ends, int ne, int *si) {
  for (int i = 0; i < ns; i++) {
    size_t sl = strlen(stems[i]);
    if (len <= sl || memcmp(w, stems[i], sl)) continue;
    for (int j = 0; j < ne; j++)
      if (strlen(ends[j]) == len - sl && !memcmp(w + sl, ends[j], len - sl)) {
        *si = i;
        return 1;
      }
  }
  return 0;
}

static int word_concept(const char *w, size_t len, int *family, int *concept) {
  if (split_match(w, len, topic_stem, N_TOPIC, topic_end, N_TOPIC_WORDS, concept)) {
    *family = SYNTH_FAM_TOPIC;
    return 1;
  }
  if (split_match(w, len, pol_stem, N_POL, pol_end, N_POL_WORDS, concept)) {
    *family = SYNTH_FAM_POLARITY;
    return 1;
  }
  if (split_match(w, len, ent_stem, N_ENT, ent_end, N_ENT_WORDS, concept)) {
    *family = SYNTH_FAM_ENTITY;
    return 1;
  }
  for (int i = 0; i < N_MARK; i++)
    if (strlen(markers[i]) == len && !memcmp(w, markers[i], len)) {
      *family = SYNTH_FAM_MARKER;
      *concept = 1;
      return 1;
    }
  return 0;
}

int synth_word_concept(const char *word, int *family, int *concept) {
  return word_concept(word, strlen(word), family, concept);
}

int synth_task_family(const char *dataset) {
  const int d = find_spec(dataset);
  return d < 0 ? -1 : specs[d].family;
}

const char *synth_rule_label(const char *dataset, int family, int concept) {
  const int d = find_spec(dataset);
  if (d < 0 || specs[d].family != family || concept < 0 || concept >= fam_size[family]) return NULL;
  const int y = specs[d].map[concept];
  return y < 0 ? NULL : specs[d].labels[y];
}

int synth_apply_rule(const char *dataset, const char *sentence, const char **label) {
  const int d = find_spec(dataset);
  if (d < 0) GORP_ERR(GORP_EINPUT, "synthetic dataset '%s' is unknown", dataset);
  const synth_spec *sp = &specs[d];
  size_t pos = 0, start, len;
  int y = -1, f, c;
  while (next_word(sentence, &pos, &start, &len)) {
    if (!word_concept(sentence + start, len, &f, &c) || f != sp->family) continue;
    if (sp->map[c] < 0)
      GORP_ERR(GORP_EINPUT, "%s: the word '%.*s' is of a concept the task never draws", sp->name,
               (int)len, sentence + start);
    if (y >= 0 && y != sp->map[c])
      GORP_ERR(GORP_EINPUT, "%s: the decisive words disagree ('%.*s' says %s, an earlier one %s)",
               sp->name, (int)len, sentence + start, sp->labels[sp->map[c]], sp->labels[y]);
    y = sp->map[c];
  }
  if (y < 0 && sp->family == SYNTH_FAM_MARKER) y = sp->map[0];
  if (y < 0) GORP_ERR(GORP_EINPUT, "%s: the sentence has no decisive word", sp->name);
  *label = sp->labels[y];
  return GORP_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Tokenizer. */
static const char *const specials[] = {"<unk>", "<s>", "</s>", "<pad>"};
enum { N_SPECIALS = 4 };

typedef struct vocab {
  char **tok;
  int n, cap;
} vocab;

static int vocab_add(vocab *v, const char *w, size_t len) {
  for (int i = 0; i < v->n; i++)
    if (strlen(v->tok[i]) == len && !memcmp(v->tok[i], w, len)) return GORP_OK;
  if (v->n == v->cap) {
    int cap = v->cap ? 2 * v->cap : 512;
    char **t = realloc(v->tok, (size_t)cap * sizeof *t);
    if (!t) GORP_ERR(GORP_EMEM, "out of memory building the synthetic vocabulary");
    v->tok = t;
    v->cap = cap;
  }
  GORP_ALLOC(v->tok[v->n], len + 1, "synthetic vocabulary");
  memcpy(v->tok[v->n++], w, len);
  return GORP_OK;
}

static int vocab_text(vocab *v, const char *s) {
  size_t pos = 0, start, len;
  while (next_word(s, &pos, &start, &len)) GORP_CALL(vocab_add(v, s + start, len));
  return GORP_OK;
}

static void vocab_free(vocab *v) {
  for (int i = 0; i < v->n; i++) free(v->tok[i]);
  free(v->tok);
  *v = (vocab){0};
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int vocab_words(vocab *v) {
  char w[WORD_MAX * 2];
  for (int g = 0; g < N_TOPIC; g++)
    for (int j = 0; j < N_TOPIC_WORDS; j++) {
      snprintf(w, sizeof w, "%s%s", topic_stem[g], topic_end[j]);
      GORP_CALL(vocab_text(v, w));
    }
  for (int l = 0; l < N_POL; l++)
    for (int j = 0; j < N_POL_WORDS; j++) {
      snprintf(w, sizeof w, "%s%s", pol_stem[l], pol_end[j]);
      GORP_CALL(vocab_text(v, w));
    }
  for (int c = 0; c < N_ENT; c++)
    for (int j = 0; j < N_ENT_WORDS; j++) {
      snprintf(w, sizeof w, "%s%s", ent_stem[c], ent_end[j]);
      GORP_CALL(vocab_text(v, w));
    }
  for (int i = 0; i < N_FILL; i++) GORP_CALL(vocab_text(v, fillers[i]));
  for (int i = 0; i < N_MARK; i++) GORP_CALL(vocab_text(v, markers[i]));
  for (int c = 0; c < N_CONCEPTS; c++)
    for (int j = 0; j <= n_cl_names(c); j++) {
      concept_name(c, j, w);
      GORP_CALL(vocab_text(v, w));
    }
  return GORP_OK;
}

/* Specials, then every other token in byte order. */
static int vocab_build(vocab *v) {
  *v = (vocab){0};
  for (int i = 0; i < N_SPECIALS; i++) GORP_CALL(vocab_add(v, specials[i], strlen(specials[i])));
  for (size_t i = 0; i < sizeof template_text / sizeof *template_text; i++)
    GORP_CALL(vocab_text(v, template_text[i]));
  for (int d = 0; d < SYNTH_N_DATASETS; d++) {
    GORP_CALL(vocab_text(v, specs[d].type));
    GORP_CALL(vocab_text(v, specs[d].name));
    if (specs[d].instruction) GORP_CALL(vocab_text(v, specs[d].instruction));
    for (int i = 0; i < specs[d].n_labels; i++) GORP_CALL(vocab_text(v, specs[d].labels[i]));
  }
  for (int i = 0; i < 3; i++) {
    GORP_CALL(vocab_text(v, pre_tasks[i].type));
    GORP_CALL(vocab_text(v, pre_tasks[i].dataset));
    GORP_CALL(vocab_text(v, pre_tasks[i].instruction));
  }
  GORP_CALL(vocab_words(v));
  qsort(v->tok + N_SPECIALS, (size_t)(v->n - N_SPECIALS), sizeof *v->tok, cmp_str);
  return GORP_OK;
}

int synth_vocab_size(void) {
  vocab v;
  int ierr = vocab_build(&v), n = v.n;
  vocab_free(&v);
  return ierr ? -1 : n;
}

/* The tokenizer.json document, in the layout the `tokenizers` library saves. */
static cJSON *tokenizer_json(const vocab *v) {
  cJSON *root = cJSON_CreateObject(), *added = cJSON_CreateArray(), *pre = cJSON_CreateObject();
  cJSON *pattern = cJSON_CreateObject(), *model = cJSON_CreateObject();
  cJSON *words = cJSON_CreateObject();
  int ok = root && added && pre && pattern && model && words;
  if (!ok) {
    cJSON_Delete(root);
    cJSON_Delete(added);
    cJSON_Delete(pre);
    cJSON_Delete(pattern);
    cJSON_Delete(model);
    cJSON_Delete(words);
    return NULL;
  }
  cJSON_AddStringToObject(root, "version", "1.0");
  cJSON_AddNullToObject(root, "truncation");
  cJSON_AddNullToObject(root, "padding");
  cJSON_AddItemToObject(root, "added_tokens", added);
  for (int i = 0; i < N_SPECIALS; i++) {
    cJSON *t = cJSON_CreateObject();
    ok = ok && t && cJSON_AddItemToArray(added, t);
    if (!ok) break;
    cJSON_AddNumberToObject(t, "id", i);
    cJSON_AddStringToObject(t, "content", specials[i]);
    cJSON_AddFalseToObject(t, "single_word");
    cJSON_AddFalseToObject(t, "lstrip");
    cJSON_AddFalseToObject(t, "rstrip");
    cJSON_AddFalseToObject(t, "normalized");
    cJSON_AddTrueToObject(t, "special");
  }
  cJSON_AddNullToObject(root, "normalizer");
  cJSON_AddItemToObject(root, "pre_tokenizer", pre);
  cJSON_AddStringToObject(pre, "type", "Split");
  cJSON_AddItemToObject(pre, "pattern", pattern);
  cJSON_AddStringToObject(pattern, "Regex", "\\w+|[^\\w\\s]|\\n");
  cJSON_AddStringToObject(pre, "behavior", "Removed");
  cJSON_AddTrueToObject(pre, "invert");
  /* "<s> $A": every sequence starts with BOS, as the suite's pretraining lays it out */
  cJSON *post = cJSON_Parse(
      "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", "
      "\"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"pair\": "
      "[{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": "
      "\"A\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"B\", \"type_id\": 1}}], "
      "\"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [1], \"tokens\": [\"<s>\"]}}}");
  if (!post) {
    cJSON_Delete(root);
    return NULL;
  }
  cJSON_AddItemToObject(root, "post_processor", post);
  cJSON_AddNullToObject(root, "decoder");
  cJSON_AddItemToObject(root, "model", model);
  cJSON_AddStringToObject(model, "type", "WordLevel");
  cJSON_AddItemToObject(model, "vocab", words);
  for (int i = 0; ok && i < v->n; i++) ok = cJSON_AddNumberToObject(words, v->tok[i], i) != NULL;
  cJSON_AddStringToObject(model, "unk_token", "<unk>");
  if (!ok) {
    cJSON_Delete(root);
    return NULL;
  }
  return root;
}

int synth_write_tokenizer(const char *path) {
  vocab v;
  int ierr = vocab_build(&v);
  cJSON *root = ierr ? NULL : tokenizer_json(&v);
  char *text = root ? cJSON_Print(root) : NULL;
  cJSON_Delete(root);
  vocab_free(&v);
  if (ierr) return ierr;
  if (!text) GORP_ERR(GORP_EMEM, "out of memory building the synthetic tokenizer.json");
  const size_t len = strlen(text);
  text[len] = '\n'; /* cJSON_Print's buffer ends at its NUL: the newline takes its place */
  ierr = fs_write_file(path, text, len + 1);
  free(text);
  if (ierr) GORP_ERR(ierr, "could not write the synthetic tokenizer %s", path);
  return GORP_OK;
}
