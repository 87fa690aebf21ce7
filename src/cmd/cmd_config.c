/* gorp config: prints a config file as gorp resolves it (defaults filled, paths resolved and
 * canonical, order expanded) with its hash and run hash, or with --schema the Markdown tables of
 * every key and the lists of what each hash covers (as docs/CONFIG.md has them). */
#include "gorp/cmd.h"
#include "gorp/config.h"
#include "gorp/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_config(int argc, char **argv) {
  if (argc == 2 && !strcmp(argv[1], "--schema")) {
    GORP_CALL(config_schema_markdown(stdout));
    fputs("\n## What the hashes cover\n\n", stdout);
    return config_scope_markdown(stdout);
  }
  if (argc < 2)
    GORP_ERR(GORP_EUSAGE, "usage: gorp config CONFIG.ini [--set section.key=value]... | --schema");
  char **overrides = calloc((size_t)argc, sizeof(char *));
  if (!overrides) GORP_ERR(GORP_EMEM, "out of memory");
  int n = 0;
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--set") || i + 1 >= argc) {
      free(overrides);
      GORP_ERR(GORP_EUSAGE, "config: unexpected argument '%s'", argv[i]);
    }
    overrides[n++] = argv[++i];
  }
  gorp_config c;
  int rc = config_load(&c, argv[1], overrides, n);
  free(overrides);
  GORP_CALL(rc);
  char *text;
  rc = config_to_text(&c, &text);
  if (!rc) {
    printf("# %s resolved (hash %016llx, run hash %016llx)\n%s", argv[1],
           (unsigned long long)config_hash(&c),
           (unsigned long long)config_scope_hash(&c, CONFIG_RUN), text);
    free(text);
  }
  config_free(&c);
  return rc;
}
