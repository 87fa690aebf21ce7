/* Unit tests of the config module: defaults, parsing every type, path resolution, overrides,
 * every error case (code and a message naming the key), the canonical text and its hash, and the
 * agreement of the schema table with docs/CONFIG.md. No MPI. */
#include "testutil.h"
#include "gorp/config.h"

#include "gorp/err.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_dir[] = "/tmp/gorp_test_config_XXXXXX";
static char written[128][PATH_MAX]; /* files to remove at the end, then their folders */
static int n_written;

/* Writes text to tmp_dir/name; returns its path, valid until the end of the run. */
static const char *write_file(const char *name, const char *text) {
  char *path = written[n_written++];
  snprintf(path, PATH_MAX, "%s/%s", tmp_dir, name);
  FILE *f = fopen(path, "w");
  if (!f) {
    perror(path);
    exit(1);
  }
  fputs(text, f);
  fclose(f);
  return path;
}

static void test_defaults_fill_every_key_and_derive_heads(void) {
  gorp_config c;
  CHECK(config_defaults(&c) == GORP_OK, "config_defaults failed");
  CHECK(c.file == NULL, "file %s", c.file);
  CHECK(!strcmp(c.run.out_dir, "runs/default"), "out_dir %s", c.run.out_dir);
  CHECK(c.run.seed == 1, "seed");
  CHECK(!strcmp(c.run.backend, "cpu"), "backend %s", c.run.backend);
  CHECK(c.run.log_every == 10, "log_every %d", c.run.log_every);
  CHECK(!strcmp(c.model.init, "random"), "init %s", c.model.init);
  const model_config *a = &c.model.arch;
  CHECK(a->vocab_size == 0 && a->hidden_size == 64 && a->intermediate_size == 172 &&
            a->num_layers == 2 && a->num_heads == 4 && a->max_seq == 1024,
        "arch sizes");
  CHECK(a->num_kv_heads == 4 && a->head_dim == 16, "derived kv %d head_dim %d", a->num_kv_heads,
        a->head_dim);
  CHECK(a->rms_eps == 1e-6f && a->rope_theta == 10000.0f && !a->tie_embeddings, "arch floats");
  CHECK(c.model.init_std == 0.02f, "init_std %g", c.model.init_std);
  CHECK(!strcmp(c.data.format, "clbench") && !strcmp(c.data.root, "none") &&
            !strcmp(c.data.instructions, "none") && c.data.n_tasks == 0 && c.data.tasks == NULL,
        "data defaults");
  CHECK(!strcmp(c.data.tokenizer, "byte"), "tokenizer %s", c.data.tokenizer);
  CHECK(c.data.max_source_length == 512 && c.data.max_target_length == 50 &&
            c.data.max_train_per_task == 0 && c.data.max_test_per_task == 0,
        "data lengths");
  CHECK(c.train.batch_size == 8 && c.train.epochs == 1 && c.train.max_steps == 0, "train ints");
  CHECK(c.train.lr == 1e-3f && c.train.beta1 == 0.9f && c.train.beta2 == 0.999f &&
            c.train.eps == 1e-8f && c.train.weight_decay == 0.0f && c.train.grad_clip == 1.0f,
        "train floats");
  CHECK(c.eval.max_new_tokens == 50, "max_new_tokens %d", c.eval.max_new_tokens);
  config_free(&c);
  CHECK(c.run.out_dir == NULL && c.data.tasks == NULL, "config_free zeroes the struct");
}

/* Also pins the inih behaviour config.c relies on: both comment styles, ';' inline comments,
 * "key: value", and indented continuation lines for lists. */
static void test_load_parses_every_type_and_comment_style(void) {
  const char *path = write_file("types.ini", "# a comment\n"
                                             "; another\n"
                                             "[run]\n"
                                             "seed = 18446744073709551615\n"
                                             "backend = cuda ; inline comment\n"
                                             "log_every: 3\n"
                                             "[model]\n"
                                             "hidden_size = 96\n"
                                             "num_heads = 6\n"
                                             "num_kv_heads = 2\n"
                                             "tie_embeddings = Yes\n"
                                             "rms_eps = 1e-5\n"
                                             "\n"
                                             "[data]\n"
                                             "root = /abs/root\n"
                                             "instructions = /abs/ins.json\n"
                                             "tasks = dbpedia , amazon,\n"
                                             "        yahoo  ; a comment\n"
                                             "\n"
                                             "  agnews\n"
                                             "[train]\n"
                                             "lr=2e-4\n"
                                             "beta1 = 0\n"
                                             "grad_clip = 0\n");
  gorp_config c;
  int rc = config_load(&c, path, NULL, 0);
  CHECK(rc == GORP_OK, "load failed with %d", rc);
  if (rc) return;
  CHECK(!strcmp(c.file, path), "file %s", c.file);
  CHECK(c.run.seed == UINT64_MAX, "seed");
  CHECK(!strcmp(c.run.backend, "cuda"), "backend '%s'", c.run.backend);
  CHECK(c.run.log_every == 3, "log_every %d", c.run.log_every);
  CHECK(c.model.arch.hidden_size == 96 && c.model.arch.num_heads == 6, "sizes");
  CHECK(c.model.arch.num_kv_heads == 2 && c.model.arch.head_dim == 16, "kv %d head_dim %d",
        c.model.arch.num_kv_heads, c.model.arch.head_dim);
  CHECK(c.model.arch.tie_embeddings == 1, "tie");
  CHECK(c.model.arch.rms_eps == 1e-5f, "rms_eps");
  CHECK(c.data.n_tasks == 4, "n_tasks %d", c.data.n_tasks);
  const char *want[] = {"dbpedia", "amazon", "yahoo", "agnews"};
  for (int i = 0; i < 4 && i < c.data.n_tasks; i++)
    CHECK(!strcmp(c.data.tasks[i], want[i]), "task %d '%s'", i, c.data.tasks[i]);
  CHECK(c.train.lr == 2e-4f && c.train.beta1 == 0.0f && c.train.grad_clip == 0.0f, "train");
  config_free(&c);
}

static void test_relative_paths_resolve_against_config_folder(void) {
  char sub[256];
  snprintf(sub, sizeof(sub), "%s/sub", tmp_dir);
  CHECK(mkdir(sub, 0700) == 0, "mkdir %s", sub);
  const char *path = write_file("sub/paths.ini", "[model]\n"
                                                 "init = random\n"
                                                 "[data]\n"
                                                 "root = data\n"
                                                 "instructions = /abs/ins.json\n"
                                                 "tasks = a\n"
                                                 "tokenizer = tok/tokenizer.json\n");
  char *ov[] = {"run.out_dir=~/runs"};
  gorp_config c;
  int rc = config_load(&c, path, ov, 1);
  CHECK(rc == GORP_OK, "load failed with %d", rc);
  if (rc) return;
  char want[PATH_MAX];
  snprintf(want, sizeof(want), "%s/data", sub);
  CHECK(!strcmp(c.data.root, want), "root %s, want %s", c.data.root, want);
  CHECK(!strcmp(c.data.instructions, "/abs/ins.json"), "absolute kept: %s", c.data.instructions);
  snprintf(want, sizeof(want), "%s/tok/tokenizer.json", sub);
  CHECK(!strcmp(c.data.tokenizer, want), "tokenizer %s", c.data.tokenizer);
  CHECK(!strcmp(c.model.init, "random"), "keyword kept: %s", c.model.init);
  snprintf(want, sizeof(want), "%s/~/runs", sub);
  CHECK(!strcmp(c.run.out_dir, want), "override resolved, ~ not expanded: %s", c.run.out_dir);
  config_free(&c);

  /* A file named without a folder is in the working directory: paths stay as written. */
  char cwd[PATH_MAX];
  CHECK(getcwd(cwd, sizeof(cwd)) != NULL, "getcwd");
  CHECK(chdir(sub) == 0, "chdir");
  rc = config_load(&c, "paths.ini", NULL, 0);
  CHECK(rc == GORP_OK && !strcmp(c.data.root, "data") && !strcmp(c.run.out_dir, "runs/default"),
        "cwd-relative root %s", rc ? "?" : c.data.root);
  config_free(&c);
  CHECK(chdir(cwd) == 0, "chdir back");
}

static void test_overrides_win_in_order(void) {
  const char *path = write_file("ov.ini", "[data]\nroot = /r\ninstructions = /i\ntasks = a, b\n"
                                          "[train]\nlr = 0.1\nepochs = 2\n");
  char *ov[] = {"train.lr=0.2", " train . lr = 0.3 ", "data.tasks=x,y,z", "model.init=m.h5"};
  gorp_config c;
  int rc = config_load(&c, path, ov, 4);
  CHECK(rc == GORP_OK, "load failed with %d", rc);
  if (rc) return;
  CHECK(c.train.lr == 0.3f, "lr %g", c.train.lr);
  CHECK(c.train.epochs == 2, "file value kept: %d", c.train.epochs);
  CHECK(c.data.n_tasks == 3 && !strcmp(c.data.tasks[2], "z"), "list replaced: %d", c.data.n_tasks);
  char want[PATH_MAX];
  snprintf(want, sizeof(want), "%s/m.h5", tmp_dir);
  CHECK(!strcmp(c.model.init, want), "init path resolved: %s", c.model.init);
  config_free(&c);

  /* Overrides can supply required keys the file lacks. */
  path = write_file("empty.ini", "");
  char *req[] = {"data.root=/r", "data.instructions=/i", "data.tasks=t"};
  rc = config_load(&c, path, req, 3);
  CHECK(rc == GORP_OK && c.data.n_tasks == 1, "required keys from overrides: %d", rc);
  config_free(&c);
}

/* Loads text (as config.ini in the temp folder) with the given overrides and expects GORP_EINPUT
 * and every NULL-terminated needle in the message. */
static void expect_error(const char *name, const char *text, char *const *ov, int n_ov, ...) {
  char file[64], absent[PATH_MAX];
  snprintf(file, sizeof(file), "%s.ini", name);
  snprintf(absent, sizeof(absent), "%s/%s", tmp_dir, file);
  const char *path = text ? write_file(file, text) : absent;
  gorp_config c;
  capture_begin();
  int rc = config_load(&c, path, ov, n_ov);
  char *msg = capture_end();
  CHECK(rc == GORP_EINPUT, "%s: rc %d, message: %s", name, rc, msg);
  CHECK(c.file == NULL && c.run.out_dir == NULL, "%s: config emptied after failure", name);
  va_list ap;
  va_start(ap, n_ov);
  for (const char *needle; (needle = va_arg(ap, const char *));)
    CHECK(strstr(msg, needle) != NULL, "%s: message lacks \"%s\": %s", name, needle, msg);
  va_end(ap);
  free(msg);
}

#define REQ "[data]\nroot = /r\ninstructions = /i\ntasks = a\n"

/* include = FILE: the included keys first, the including file's keys override them, each path
 * relative to the file that set it; bad includes fail naming the file and line. */
static void test_include_reads_a_shared_file_first(void) {
  write_file("sub/common.ini", "[data]\nroot = data\ninstructions = /i\ntasks = a, b\n"
                               "[train]\nlr = 0.1\nepochs = 3\n[run]\nout_dir = runs/common\n");
  const char *path =
      write_file("top.ini", "include = sub/common.ini\n[train]\nlr = 0.2\n[run]\nout_dir = out\n");
  char *ov[] = {"model.init=m.h5"};
  gorp_config c;
  int rc = config_load(&c, path, ov, 1);
  CHECK(rc == GORP_OK, "load with include failed with %d", rc);
  if (rc) return;
  char want[PATH_MAX];
  snprintf(want, sizeof(want), "%s/sub/data", tmp_dir);
  CHECK(!strcmp(c.data.root, want), "included path relative to its file: %s", c.data.root);
  snprintf(want, sizeof(want), "%s/out", tmp_dir);
  CHECK(!strcmp(c.run.out_dir, want), "overriding path relative to its file: %s", c.run.out_dir);
  snprintf(want, sizeof(want), "%s/m.h5", tmp_dir);
  CHECK(!strcmp(c.model.init, want), "override relative to the top file: %s", c.model.init);
  CHECK(c.train.lr == 0.2f && c.train.epochs == 3, "lr %g epochs %d", (double)c.train.lr,
        c.train.epochs);
  CHECK(c.data.n_tasks == 2 && !strcmp(c.data.tasks[1], "b"), "included list kept");
  config_free(&c);

  expect_error("include_missing", "include = nowhere.ini\n", NULL, 0, "nowhere.ini",
               "include_missing.ini:1: in the file included here", NULL);
  expect_error("include_self", "include = include_self.ini\n", NULL, 0,
               "includes nest deeper than 8 files (a cycle?)", NULL);
  expect_error("include_twice", "include = sub/common.ini\ninclude = sub/common.ini\n", NULL, 0,
               "include_twice.ini:2: a second include (the first is on line 1)", NULL);
  expect_error("include_in_section", "[run]\ninclude = sub/common.ini\n", NULL, 0,
               "unknown key 'include' in section [run]", NULL);
  write_file("sub/bad.ini", "[train]\nlrr = 1\n");
  expect_error("include_bad", "include = sub/bad.ini\n", NULL, 0,
               "sub/bad.ini:2: unknown key 'lrr'", NULL);
}

static void test_bad_files_fail_naming_line_and_key(void) {
  expect_error("unknown_key", REQ "[train]\nlr = 1\nlrr = 2\n", NULL, 0,
               "unknown_key.ini:7: unknown key 'lrr' in section [train] (did you mean 'lr'?)",
               NULL);
  expect_error("unknown_section", "[trian]\nlr = 1\n", NULL, 0,
               "unknown_section.ini:2: unknown section [trian] (did you mean [train]?)", NULL);
  expect_error("wrong_section", "[model]\nseed = 3\n", NULL, 0,
               "wrong_section.ini:2: unknown key 'seed' in section [model]",
               "did you mean 'seed' in [run]?", NULL);
  expect_error("no_section", "lr = 1\n", NULL, 0, "no_section.ini:1: key 'lr'",
               "before any [section]", NULL);
  expect_error("bad_number", REQ "[train]\nlr = abc\n", NULL, 0,
               "bad_number.ini:6: train.lr = abc: expected a number > 0", NULL);
  expect_error("hash_not_inline_comment", "[train]\nlr = 1e-3 # note\n", NULL, 0,
               "train.lr = 1e-3 # note: expected a number > 0", NULL);
  expect_error("zero_batch", "[train]\nbatch_size = 0\n", NULL, 0,
               "zero_batch.ini:2: train.batch_size = 0: expected an integer >= 1", NULL);
  expect_error("int_junk", "[train]\nepochs = 2.5\n", NULL, 0, "train.epochs = 2.5", NULL);
  expect_error("int_overflow", "[train]\nepochs = 99999999999\n", NULL, 0, "train.epochs", NULL);
  expect_error("beta_one", "[train]\nbeta2 = 1\n", NULL, 0,
               "train.beta2 = 1: expected a number in [0, 1)", NULL);
  expect_error("negative_decay", "[train]\nweight_decay = -0.1\n", NULL, 0,
               "train.weight_decay = -0.1: expected a number >= 0", NULL);
  expect_error("zero_lr", "[train]\nlr = 0\n", NULL, 0, "train.lr = 0", NULL);
  expect_error("inf_lr", "[train]\nlr = inf\n", NULL, 0, "train.lr = inf", NULL);
  expect_error("nan_lr", "[train]\nlr = nan\n", NULL, 0, "train.lr = nan", NULL);
  expect_error("float_overflow", "[train]\nlr = 1e39\n", NULL, 0, "train.lr = 1e39", NULL);
  expect_error("negative_seed", "[run]\nseed = -1\n", NULL, 0, "run.seed = -1", NULL);
  expect_error("seed_overflow", "[run]\nseed = 18446744073709551616\n", NULL, 0, "run.seed", NULL);
  expect_error("bad_bool", "[model]\ntie_embeddings = maybe\n", NULL, 0,
               "model.tie_embeddings = maybe: expected true, false", NULL);
  expect_error("blank_in_name", "[data]\ntasks = dbpedia amazon\n", NULL, 0,
               "blank_in_name.ini:2: data.tasks = dbpedia amazon: expected comma-separated names",
               NULL);
  expect_error("bad_choice", "[run]\nbackend = gpu\n", NULL, 0,
               "run.backend = gpu: expected one of: cpu, cuda", NULL);
  expect_error("empty_path", "[model]\ninit =\n", NULL, 0,
               "empty_path.ini:2: model.init = : expected 'random' or a path", NULL);
  expect_error("duplicate", "[train]\nlr = 1\n[model]\n[train]\nlr = 2\n", NULL, 0,
               "duplicate.ini:5: duplicate key 'lr' in section [train] (first set on line 2)",
               NULL);
  expect_error("malformed", REQ "[train]\nlr 1e-3\n", NULL, 0,
               "malformed.ini:6: cannot parse 'lr 1e-3'", NULL);
  expect_error("unclosed_section", "[train\nlr = 1\n", NULL, 0,
               "unclosed_section.ini:1: cannot parse '[train'", NULL);
  /* the earliest error wins, whichever of inih and the schema finds it */
  expect_error("first_error_wins", "[train]\nlrr = 1\nno equals sign\n", NULL, 0,
               "first_error_wins.ini:2: unknown key 'lrr'", NULL);
  expect_error("malformed_first", "[train]\nno equals sign\nlrr = 1\n", NULL, 0,
               "malformed_first.ini:2: cannot parse 'no equals sign'", NULL);
  expect_error("indented_key", "[train]\n  lr = 1\n  epochs = 2\n", NULL, 0,
               "indented_key.ini:3: indented line continues the value of train.lr", NULL);
  char long_line[400];
  snprintf(long_line, sizeof(long_line), "[data]\nroot = /%0300d\n", 0);
  expect_error("long_line", long_line, NULL, 0, "long_line.ini:2: line longer than", NULL);
  expect_error("missing_file", NULL, NULL, 0, "config file",
               "missing_file.ini': cannot open it: No such file", NULL);
}

static void test_missing_and_inconsistent_values_fail_naming_keys(void) {
  expect_error("no_root", "[data]\ninstructions = /i\ntasks = a\n", NULL, 0,
               "no_root.ini: data.root is required", NULL);
  expect_error("no_instructions", "[data]\nroot = /r\ntasks = a\n", NULL, 0,
               "data.instructions is required", NULL);
  expect_error("no_tasks", "[data]\nroot = /r\ninstructions = /i\ntasks = ,\n", NULL, 0,
               "data.tasks or data.order is required", NULL);
  expect_error("head_dim_uneven", REQ "[model]\nhidden_size = 65\n", NULL, 0,
               "model.hidden_size (65) is not a multiple of model.num_heads (4)", NULL);
  expect_error("kv_heads", REQ "[model]\nnum_heads = 4\nnum_kv_heads = 3\n", NULL, 0,
               "model.num_heads (4) must be a multiple of model.num_kv_heads (3)", NULL);
}

/* data.order expands from the orders file (relative to the config folder), then
 * data.substitute replaces datasets; misuse is refused naming the keys. */
static void test_orders_expand_and_substitute(void) {
  write_file("orders.txt", "# comment\norder1 dbpedia amazon yahoo agnews\n\norder2 CB  COPA\n");
  const char *path = write_file(
      "ordered.ini", "[data]\nroot = /r\ninstructions = /i\norder = order1\norders = orders.txt\n"
                     "substitute = yahoo=yelp\n");
  gorp_config c;
  int rc = config_load(&c, path, NULL, 0);
  CHECK(rc == GORP_OK && c.data.n_tasks == 4 && !strcmp(c.data.tasks[0], "dbpedia") &&
            !strcmp(c.data.tasks[2], "yelp") && !strcmp(c.data.tasks[3], "agnews"),
        "order1 with yahoo=yelp: rc %d, %d tasks", rc, c.data.n_tasks);
  config_free(&c);
  char *o2[] = {"data.order=order2", "data.substitute="};
  rc = config_load(&c, path, o2, 2);
  CHECK(rc == GORP_OK && c.data.n_tasks == 2 && !strcmp(c.data.tasks[1], "COPA"),
        "order2 (two blanks between names): rc %d, %d tasks", rc, c.data.n_tasks);
  config_free(&c);
  char *o3[] = {"data.substitute=yahoo="};
  rc = config_load(&c, path, o3, 1);
  CHECK(rc == GORP_OK && c.data.n_tasks == 3 && !strcmp(c.data.tasks[2], "agnews"),
        "yahoo= removes yahoo: rc %d, %d tasks", rc, c.data.n_tasks);
  config_free(&c);
  const char *base = "[data]\nroot = /r\ninstructions = /i\norders = orders.txt\n";
  char text[512];
  snprintf(text, sizeof(text), "%sorder = order9\n", base);
  expect_error("order_unknown", text, NULL, 0, "data.order = order9 is not in the orders file",
               "order1, order2", NULL);
  snprintf(text, sizeof(text), "%sorder = order1\ntasks = CB\n", base);
  expect_error("order_and_tasks", text, NULL, 0, "give data.tasks or data.order", NULL);
  expect_error("order_no_file", "[data]\nroot = /r\ninstructions = /i\norder = order1\n", NULL, 0,
               "data.order = order1 needs data.orders", NULL);
  snprintf(text, sizeof(text), "%sorder = order1\nsubstitute = nope=yelp\n", base);
  expect_error("substitute_unknown", text, NULL, 0, "data.substitute: 'nope' is not one of", NULL);
  snprintf(text, sizeof(text), "%sorder = order1\nsubstitute = yahoo\n", base);
  expect_error("substitute_form", text, NULL, 0, "'yahoo' is not of the form old=new", NULL);
  snprintf(text, sizeof(text), "%sorder = order1\nsubstitute = yahoo=agnews\n", base);
  expect_error("substitute_duplicate", text, NULL, 0, "dataset agnews appears twice", NULL);
}

/* train.per_task overrides one task's settings and leaves the others at [train]. */
static void test_per_task_overrides(void) {
  const char *path =
      write_file("per_task.ini", "[data]\nroot = /r\ninstructions = /i\n"
                                 "tasks = MNLI, CB\n[train]\nepochs = 1\nlr = 1e-3\n"
                                 "per_task = MNLI:epochs=2, MNLI:lr=5e-4, CB:batch_size=4\n");
  gorp_config c;
  int rc = config_load(&c, path, NULL, 0);
  CHECK(rc == GORP_OK, "per_task config loads: %d", rc);
  task_train t;
  config_task_train(&c, "MNLI", &t);
  CHECK(t.epochs == 2 && t.lr == 5e-4f && t.batch_size == 8, "MNLI: %d epochs lr %g batch %d",
        t.epochs, t.lr, t.batch_size);
  config_task_train(&c, "CB", &t);
  CHECK(t.epochs == 1 && t.lr == 1e-3f && t.batch_size == 4, "CB: %d epochs lr %g batch %d",
        t.epochs, t.lr, t.batch_size);
  config_free(&c);
  expect_error("per_task_key", REQ "[train]\nper_task = a:epoch=2\n", NULL, 0,
               "train.per_task entry 'a:epoch=2'", NULL);
  expect_error("per_task_value", REQ "[train]\nper_task = a:epochs=0\n", NULL, 0,
               "train.per_task entry 'a:epochs=0'", NULL);
  expect_error("per_task_dataset", REQ "[train]\nper_task = b:epochs=2\n", NULL, 0,
               "'b:epochs=2' names a dataset that is not a task", NULL);
}

static void test_bad_overrides_fail_naming_key(void) {
  char *no_eq[] = {"train.lr"};
  expect_error("ov_no_eq", REQ, no_eq, 1, "bad override 'train.lr'", NULL);
  char *no_dot[] = {"lr=1"};
  expect_error("ov_no_dot", REQ, no_dot, 1, "bad override 'lr=1'", NULL);
  char *no_section[] = {".lr=1"};
  expect_error("ov_no_section", REQ, no_section, 1, "bad override '.lr=1'", NULL);
  char *unknown[] = {"train.lrr=1"};
  expect_error("ov_unknown", REQ, unknown, 1,
               "override 'train.lrr=1': unknown key 'lrr' in section [train] (did you mean 'lr'?)",
               NULL);
  char *bad_value[] = {"train.lr=1", "train.lr=abc"};
  expect_error("ov_bad_value", REQ, bad_value, 2,
               "override 'train.lr=abc': train.lr = abc: expected a number > 0", NULL);
  char *control[] = {"data.root=a\tb"};
  expect_error("ov_control", REQ, control, 1, "data.root", NULL);
}

static uint64_t fnv1a(const char *s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
  return h;
}

static void test_text_is_stable_and_hash_tracks_values(void) {
  const char *path = write_file("text.ini", "[data]\nroot = /r\ninstructions = /i\n"
                                            "tasks = a,b\n[train]\nlr = 1e-3\n");
  gorp_config c1, c2, c3;
  char *ov[] = {"train.lr=2e-3"};
  if (config_load(&c1, path, NULL, 0) || config_load(&c2, path, NULL, 0) ||
      config_load(&c3, path, ov, 1)) {
    CHECK(0, "loads failed");
    return;
  }
  char *t1, *t2, *t3;
  CHECK(config_to_text(&c1, &t1) == GORP_OK && config_to_text(&c2, &t2) == GORP_OK &&
            config_to_text(&c3, &t3) == GORP_OK,
        "config_to_text failed");
  CHECK(!strcmp(t1, t2), "same file, same text");
  CHECK(strncmp(t1, "[run]\nout_dir = ", 16) == 0, "starts with [run]: %.40s", t1);
  CHECK(strstr(t1, "\n\n[model]\ninit = random\n") != NULL, "sections in order");
  CHECK(strstr(t1, "\nlr = 0.001\n") && strstr(t1, "\nrms_eps = 1e-06\n") &&
            strstr(t1, "\nrope_theta = 10000\n") && strstr(t1, "\ngrad_clip = 1\n") &&
            strstr(t1, "\nnum_kv_heads = 4\nhead_dim = 16\n") && strstr(t1, "\ntasks = a, b\n") &&
            strstr(t1, "\ntie_embeddings = false\n") && strstr(t1, "\nseed = 1\n"),
        "canonical values: %s", t1);
  CHECK(config_hash(&c1) == config_hash(&c2), "same config, same hash");
  CHECK(config_hash(&c1) == fnv1a(t1), "hash is FNV-1a of the text");
  CHECK(config_hash(&c1) != config_hash(&c3), "lr changes the hash");
  CHECK(strstr(t3, "\nlr = 0.002\n") != NULL, "override in text");

  /* The text is itself a config that loads back to the same text. */
  const char *again = write_file("again.ini", t1);
  gorp_config c4;
  char *t4 = NULL;
  CHECK(config_load(&c4, again, NULL, 0) == GORP_OK && config_to_text(&c4, &t4) == GORP_OK &&
            !strcmp(t1, t4),
        "round trip: %s", t4 ? t4 : "(failed)");
  free(t4);
  config_free(&c4);

  /* Empty values print as "key =" (no trailing blank). */
  gorp_config d;
  char *td;
  CHECK(config_defaults(&d) == GORP_OK && config_to_text(&d, &td) == GORP_OK, "defaults text");
  CHECK(strstr(td, "\nroot = none\n") != NULL && strstr(td, "\ntasks =\n") != NULL, "empty: %s",
        td);
  free(td);
  config_free(&d);
  free(t1);
  free(t2);
  free(t3);
  config_free(&c1);
  config_free(&c2);
  config_free(&c3);
}

/* Reads a whole file (malloc'd) or returns NULL. */
static char *read_all(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char *text = calloc((size_t)n + 1, 1);
  if (fread(text, 1, (size_t)n, f) != (size_t)n) text[0] = '\0';
  fclose(f);
  return text;
}

/* The key of a table row "| `section.key` | ...", copied into key; 0 if line is no such row. */
static int row_key(const char *line, char *key, size_t n) {
  if (strncmp(line, "| `", 3)) return 0;
  const char *end = strchr(line + 3, '`');
  if (!end || (size_t)(end - line - 3) >= n) return 0;
  snprintf(key, n, "%.*s", (int)(end - line - 3), line + 3);
  return 1;
}

static const char *next_line(const char *line) {
  line += strcspn(line, "\n");
  return *line ? line + 1 : line;
}

/* The row of text whose key is key (without its newline), or NULL. */
static const char *find_row(const char *text, const char *key, size_t *len) {
  char k[128];
  for (const char *line = text; *line; line = next_line(line)) {
    if (row_key(line, k, sizeof(k)) && !strcmp(k, key)) {
      *len = strcspn(line, "\n");
      return line;
    }
  }
  return NULL;
}

static void test_docs_and_schema_list_the_same_keys(void) {
  char path[PATH_MAX];
  const char *src = getenv("GORP_SRC");
  if (src)
    snprintf(path, sizeof(path), "%s/docs/CONFIG.md", src);
  else /* run by hand: __FILE__ is <src>/tests/unit/test_config.c */
    snprintf(path, sizeof(path), "%.*s/docs/CONFIG.md",
             (int)(strlen(__FILE__) - strlen("/tests/unit/test_config.c")), __FILE__);
  char *docs = read_all(path);
  CHECK(docs != NULL, "cannot read %s (set GORP_SRC)", path);
  if (!docs) return;
  char *schema = NULL;
  size_t schema_len = 0;
  FILE *mem = open_memstream(&schema, &schema_len);
  CHECK(config_schema_markdown(mem) == GORP_OK, "config_schema_markdown failed");
  fclose(mem);

  int n_schema = 0;
  char key[128];
  for (const char *line = schema; *line; line = next_line(line)) {
    if (!row_key(line, key, sizeof(key))) continue;
    n_schema++;
    size_t want_len = strcspn(line, "\n"), got_len = 0;
    const char *got = find_row(docs, key, &got_len);
    CHECK(got != NULL, "schema key %s is missing from docs/CONFIG.md; add the row\n%.*s", key,
          (int)want_len, line);
    if (got)
      CHECK(got_len == want_len && !strncmp(got, line, want_len),
            "docs/CONFIG.md row of %s differs from the schema;\n got %.*s\nwant %.*s", key,
            (int)got_len, got, (int)want_len, line);
  }
  CHECK(n_schema >= 30, "schema rows parsed: %d", n_schema);
  for (const char *line = docs; *line; line = next_line(line)) {
    size_t len;
    if (row_key(line, key, sizeof(key)))
      CHECK(find_row(schema, key, &len) != NULL,
            "docs/CONFIG.md documents %s, which the schema in src/config/config.c lacks", key);
  }
  free(schema);
  free(docs);
}

int main(void) {
  if (!mkdtemp(tmp_dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_defaults_fill_every_key_and_derive_heads();
  test_load_parses_every_type_and_comment_style();
  test_relative_paths_resolve_against_config_folder();
  test_include_reads_a_shared_file_first();
  test_overrides_win_in_order();
  test_bad_files_fail_naming_line_and_key();
  test_missing_and_inconsistent_values_fail_naming_keys();
  test_bad_overrides_fail_naming_key();
  test_orders_expand_and_substitute();
  test_per_task_overrides();
  test_text_is_stable_and_hash_tracks_values();
  test_docs_and_schema_list_the_same_keys();

  for (int i = n_written - 1; i >= 0; i--) remove(written[i]);
  char sub[256];
  snprintf(sub, sizeof(sub), "%s/sub", tmp_dir);
  rmdir(sub);
  rmdir(tmp_dir);
  return tests_finish();
}
