/* Unit tests of what the config hashes cover (config.h config_scope): one config named by other
 * paths (absolute, relative from another folder, through a link) has one text and hash; the run
 * hash leaves out pretrain.* and the output keys, the pretrain key the run-only keys; the text
 * diff matches keys within their section; each key's resume class; and the lists of docs/CONFIG.md
 * "What the hashes cover" are the ones config_scope_markdown writes. No MPI. */
#include "testutil.h"
#include "gorp/config.h"

#include "gorp/err.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_dir[] = "/tmp/gorp_test_config_scope_XXXXXX";

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f || fputs(text, f) < 0 || fclose(f)) {
    perror(path);
    exit(2);
  }
}

static char *text_of(const gorp_config *c, config_scope scope) {
  char *t = NULL;
  if (config_scope_text(c, scope, &t)) {
    CHECK(0, "config_scope_text failed");
    exit(2);
  }
  return t;
}

/* The same file loaded as /abs/dir/k.ini, as k.ini from /abs/dir, as ../dir/k.ini from a sibling
 * and through a link to dir: every scope's text is the same (paths canonical). */
static void test_one_config_named_four_ways_has_one_text(void) {
  char dir[PATH_MAX], sib[PATH_MAX], link[PATH_MAX], path[PATH_MAX], via_link[PATH_MAX],
      cwd[PATH_MAX];
  fmt_path(dir, "%s/cfg", tmp_dir);
  fmt_path(sib, "%s/sib", tmp_dir);
  fmt_path(link, "%s/link", tmp_dir);
  fmt_path(path, "%s/k.ini", dir);
  fmt_path(via_link, "%s/k.ini", link);
  if (mkdir(dir, 0700) || mkdir(sib, 0700) || symlink("cfg", link) || !getcwd(cwd, sizeof(cwd))) {
    CHECK(0, "cannot set up %s", dir);
    return;
  }
  /* out_dir does not exist yet and climbs out with ".." */
  write_text(path, "[run]\nout_dir = runs/../out/./x\n[data]\nroot = .\ninstructions = i.json\n"
                   "tasks = a\n");
  /* each text is made where its config was loaded: relative paths are relative to that folder */
  const char *where[4] = {cwd, dir, sib, sib}, *name[4] = {path, "k.ini", "../cfg/k.ini", via_link};
  char *text[4] = {NULL};
  uint64_t hash[4], run[4];
  for (int i = 0; i < 4; i++) {
    gorp_config c;
    if (chdir(where[i]) || config_load(&c, name[i], NULL, 0)) {
      CHECK(0, "cannot load %s from %s", name[i], where[i]);
      break;
    }
    text[i] = text_of(&c, CONFIG_ALL);
    hash[i] = config_hash(&c);
    run[i] = config_scope_hash(&c, CONFIG_RUN);
    config_free(&c);
  }
  CHECK(!chdir(cwd), "back to %s", cwd);
  if (!text[3]) return;
  char real[PATH_MAX], want[PATH_MAX + 32];
  CHECK(realpath(dir, real) != NULL, "realpath %s", dir);
  snprintf(want, sizeof(want), "[run]\nout_dir = %s/out/x\n", real);
  CHECK(!strncmp(text[0], want, strlen(want)), "canonical out_dir: want %s got %.120s", want,
        text[0]);
  for (int i = 1; i < 4; i++) {
    CHECK(!strcmp(text[0], text[i]), "%s from %s: text differs:\n%s\nvs\n%s", name[i], where[i],
          text[0], text[i]);
    CHECK(hash[i] == hash[0] && run[i] == run[0], "%s from %s: hash", name[i], where[i]);
  }
  for (int i = 0; i < 4; i++) free(text[i]);
}

/* Which keys enter which hash. */
static void test_scopes_cover_what_each_command_computes_with(void) {
  const char *base = "[data]\nroot = /r\ninstructions = /i\ntasks = a\n";
  gorp_config c, pre, lr, out;
  char *ov_pre[] = {"pretrain.steps=7", "pretrain.out=/elsewhere/b.h5"};
  char *ov_lr[] = {"train.lr=0.5"};
  char *ov_out[] = {"run.out_dir=/o2", "run.log_every=3", "run.checkpoint_every=5",
                    "parallel.tp=2"};
  if (config_from_text(&c, base, NULL, 0) || config_from_text(&pre, base, ov_pre, 2) ||
      config_from_text(&lr, base, ov_lr, 1) || config_from_text(&out, base, ov_out, 4)) {
    CHECK(0, "loads failed");
    return;
  }
  char *run = text_of(&c, CONFIG_RUN), *ptext = text_of(&c, CONFIG_PRETRAIN);
  CHECK(!strstr(run, "[pretrain]") && !strstr(run, "[parallel]") && !strstr(run, "out_dir") &&
            !strstr(run, "log_every") && strstr(run, "[train]\n") && strstr(run, "\nseed = 1\n"),
        "run text: %s", run);
  CHECK(strstr(ptext, "seed = 1\n") && strstr(ptext, "format = clbench\n") &&
            strstr(ptext, "hidden_size = 64\n") && strstr(ptext, "steps = 1500\n") &&
            !strstr(ptext, "out =") && !strstr(ptext, "lr = 0.001\n") && !strstr(ptext, "[lora]") &&
            !strstr(ptext, "tasks ="),
        "pretrain text: %s", ptext);
  const uint64_t h = config_hash(&c), hr = config_scope_hash(&c, CONFIG_RUN),
                 hp = config_scope_hash(&c, CONFIG_PRETRAIN);
  CHECK(config_hash(&pre) != h && config_scope_hash(&pre, CONFIG_RUN) == hr &&
            config_scope_hash(&pre, CONFIG_PRETRAIN) != hp,
        "pretrain.* : in the full hash and the pretrain key, not in the run hash");
  CHECK(config_hash(&lr) != h && config_scope_hash(&lr, CONFIG_RUN) != hr &&
            config_scope_hash(&lr, CONFIG_PRETRAIN) == hp,
        "train.lr: in the run hash, not in the pretrain key");
  CHECK(config_hash(&out) != h && config_scope_hash(&out, CONFIG_RUN) == hr &&
            config_scope_hash(&out, CONFIG_PRETRAIN) == hp,
        "out_dir, logging, checkpoint cadence, tp: only in the full hash");
  free(run);
  free(ptext);
  config_free(&c);
  config_free(&pre);
  config_free(&lr);
  config_free(&out);
}

static void collect(const config_change *ch, void *arg) {
  char *keys = arg;
  snprintf(keys + strlen(keys), 512 - strlen(keys), "%s%s=%.*s(%.*s)", keys[0] ? " " : "", ch->key,
           ch->now_len, ch->now, ch->was ? ch->was_len : 4, ch->was ? ch->was : "none");
}

/* train.lr set to lora.lr's value still differs: lines match within their own section. */
static void test_text_diff_matches_keys_within_their_section(void) {
  const char *was = "[train]\nlr = 0.001\nepochs = 1\n\n[lora]\nlr = 0.0002\n";
  const char *now = "[train]\nlr = 0.0002\nepochs = 1\nnew_key = 3\n\n[lora]\nlr = 0.0002\n";
  char keys[512] = "";
  CHECK(config_text_diff(now, was, collect, keys) == 2, "two changes: %s", keys);
  CHECK(!strcmp(keys, "train.lr=0.0002(0.001) train.new_key=3(none)"), "changes: %s", keys);
  CHECK(config_text_diff(was, was, NULL, NULL) == 0, "a text equals itself");
  /* a key the old text lacks is no change at its default (a checkpoint of an older gorp), a
   * change at any other value */
  const char *old = "[train]\nlr = 0.001\n";
  keys[0] = '\0';
  CHECK(config_text_diff("[train]\nlr = 0.001\nrecompute = false\n\n[eval]\nzero_shot = true\n",
                         old, collect, keys) == 0,
        "new keys at their defaults: %s", keys);
  CHECK(config_text_diff("[train]\nlr = 0.001\nrecompute = true\n\n[eval]\nzero_shot = false\n",
                         old, collect, keys) == 2 &&
            !strcmp(keys, "train.recompute=true(none) eval.zero_shot=false(none)"),
        "new keys off their defaults: %s", keys);
}

static void test_resume_classes(void) {
  CHECK(config_key_resume("run.out_dir") == CONFIG_RESUME_ANY, "out_dir");
  CHECK(config_key_resume("pretrain.steps") == CONFIG_RESUME_ANY, "pretrain.steps");
  CHECK(config_key_resume("parallel.dp") == CONFIG_RESUME_ANY, "parallel.dp");
  CHECK(config_key_resume("data.root") == CONFIG_RESUME_FORCE, "data.root");
  CHECK(config_key_resume("run.backend") == CONFIG_RESUME_FORCE, "run.backend");
  CHECK(config_key_resume("train.lr") == CONFIG_RESUME_NEVER, "train.lr");
  CHECK(config_key_resume("data.tasks") == CONFIG_RESUME_NEVER, "data.tasks");
  CHECK(config_key_resume("no.such") == CONFIG_RESUME_NEVER, "unknown keys are refused");
}

/* The "- **...**" lines of docs/CONFIG.md are config_scope_markdown's, in order. */
static void test_docs_list_what_the_hashes_cover(void) {
  char path[PATH_MAX];
  const char *src = getenv("GORP_SRC");
  if (src)
    fmt_path(path, "%s/docs/CONFIG.md", src);
  else /* run by hand: __FILE__ is <src>/tests/unit/test_config_scope.c */
    fmt_path(path, "%.*s/docs/CONFIG.md",
             (int)(strlen(__FILE__) - strlen("/tests/unit/test_config_scope.c")), __FILE__);
  FILE *f = fopen(path, "r");
  CHECK(f != NULL, "cannot read %s (set GORP_SRC)", path);
  if (!f) return;
  char *want = NULL;
  size_t want_len = 0;
  FILE *mem = open_memstream(&want, &want_len);
  CHECK(config_scope_markdown(mem) == GORP_OK, "config_scope_markdown failed");
  fclose(mem);
  char line[4096];
  const char *w = want;
  int n = 0;
  while (fgets(line, sizeof(line), f)) {
    if (strncmp(line, "- **", 4)) continue;
    const size_t len = strcspn(w, "\n") + 1;
    CHECK(*w && strlen(line) == len && !strncmp(line, w, len),
          "docs/CONFIG.md list line %d differs from `gorp config --schema`;\n got %s want %.*s",
          n + 1, line, (int)len, w);
    w += *w ? len : 0;
    n++;
  }
  CHECK(n == 4 && !*w, "docs/CONFIG.md has %d list lines; want the 4 of config_scope_markdown", n);
  fclose(f);
  free(want);
}

int main(void) {
  if (!mkdtemp(tmp_dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_one_config_named_four_ways_has_one_text();
  test_scopes_cover_what_each_command_computes_with();
  test_text_diff_matches_keys_within_their_section();
  test_resume_classes();
  test_docs_list_what_the_hashes_cover();
  rm_tree(tmp_dir);
  return tests_finish();
}
