/* gorp config: prints a config file as gorp resolves it (defaults filled, paths resolved and
 * canonical, order expanded; with a model file as model.init, the file's architecture in place of
 * the model.* keys it overrides) with its hash and run hash, or with --schema the Markdown tables
 * of every key and the lists of what each hash covers (as docs/CONFIG.md has them). */
#include "gorp/cmd.h"
#include "gorp/config.h"
#include "gorp/err.h"
#include "gorp/model.h"
#include "gorp/modelfile.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct config_args {
  const char *config;
  cmd_list sets; /* section.key=value overrides, in order */
  int schema;
} config_args;

/* The [model] section's architecture keys are ignored when model.init is a file (its /model
 * attributes decide): printing their defaults (hidden_size = 64 for a 7B run) would mislead. Each
 * such line becomes a comment with the file's value (or saying the file cannot be read here);
 * init_std and embed_init_std (random init only) are commented out too. */
static void print_model_file_keys(const char *text, const char *init) {
  model_config file;
  const int have = !access(init, R_OK) && !modelfile_read_config(init, &file);
  int n;
  const model_key *keys = model_config_keys(&n);
  int in_model = 0;
  for (const char *line = text; *line;) {
    const char *end = strchr(line, '\n');
    const int len = end ? (int)(end - line) : (int)strlen(line);
    if (line[0] == '[') in_model = !strncmp(line, "[model]", 7);
    const model_key *k = NULL;
    for (int i = 0; in_model && i < n && !k; i++) {
      const size_t kl = strlen(keys[i].name);
      if (!strncmp(line, keys[i].name, kl) && !strncmp(line + kl, " = ", 3)) k = &keys[i];
    }
    const int random_only =
        in_model && (!strncmp(line, "init_std = ", 11) || !strncmp(line, "embed_init_std = ", 17));
    const double v = k && have ? model_key_get(&file, k) : 0.0;
    const char *given = k ? line + strlen(k->name) + 3 : ""; /* this config's value */
    const int given_len = len - (int)(given - line);
    /* comments only: the text stays a config that gorp reads as before */
    if (k && have && k->type == MODEL_KEY_BOOL)
      printf("# %s = %s  (from model.init; this config's %.*s is ignored)\n", k->name,
             v ? "true" : "false", given_len, given);
    else if (k && have) /* a float field's shortest exact-enough form: 1e-05, not 9.99e-06 */
      printf("# %s = %.*g  (from model.init; this config's %.*s is ignored)\n", k->name,
             k->type == MODEL_KEY_FLOAT ? 7 : 10, v, given_len, given);
    else if (k || random_only)
      printf("# %.*s  (ignored: model.init is a file%s)\n", len, line,
             k ? " that decides the architecture; it cannot be read here" : "");
    else
      printf("%.*s\n", len, line);
    line += len + (end != NULL);
  }
}

static int config_main(const void *args) {
  const config_args *a = args;
  if (a->schema && (a->config || a->sets.n))
    return cmd_args_usage_error(&cmd_config_spec, "--schema takes no config");
  if (a->schema) {
    GORP_CALL(config_schema_markdown(stdout));
    fputs("\n## What the hashes cover\n\n", stdout);
    return config_scope_markdown(stdout);
  }
  if (!a->config)
    return cmd_args_usage_error(&cmd_config_spec, "CONFIG.ini or --schema is missing");
  gorp_config c;
  GORP_CALL(config_load(&c, a->config, a->sets.items, a->sets.n));
  char *text;
  const int rc = config_to_text(&c, &text);
  if (!rc) {
    printf("# %s resolved (hash %016llx, run hash %016llx)\n", a->config,
           (unsigned long long)config_hash(&c),
           (unsigned long long)config_scope_hash(&c, CONFIG_RUN));
    if (strcmp(c.model.init, "random"))
      print_model_file_keys(text, c.model.init);
    else
      fputs(text, stdout);
    free(text);
  }
  config_free(&c);
  return rc;
}

static const cmd_arg config_table[] = {
    {NULL, CMD_TEXT, offsetof(config_args, config), "CONFIG.ini", "the config to resolve", 0},
    CMD_ARG_SET(config_args, sets),
    {"schema", CMD_FLAG, offsetof(config_args, schema), NULL,
     "instead of a config: the tables of every key and of what each hash covers", 0},
};

const cmd_spec cmd_config_spec = {CMD_SPEC(
    "config",
    "prints a config as gorp resolves it, or with --schema the key tables of docs/CONFIG.md",
    config_table, config_args, config_main)};
