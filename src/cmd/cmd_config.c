/* gorp config: prints a config file as gorp resolves it (defaults filled, paths resolved and
 * canonical, order expanded) with its hash and run hash, or with --schema the Markdown tables of
 * every key and the lists of what each hash covers (as docs/CONFIG.md has them). */
#include "gorp/cmd.h"
#include "gorp/config.h"
#include "gorp/err.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct config_args {
  const char *config;
  cmd_list sets; /* section.key=value overrides, in order */
  int schema;
} config_args;

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
    printf("# %s resolved (hash %016llx, run hash %016llx)\n%s", a->config,
           (unsigned long long)config_hash(&c),
           (unsigned long long)config_scope_hash(&c, CONFIG_RUN), text);
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
