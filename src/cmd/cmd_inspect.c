/* gorp inspect FILE.h5 [--verify]: a readable summary of a model file or checkpoint (config,
 * tasks done, shapes, basis sizes per module and task, accuracy matrix); --verify reads every
 * dataset back and checks its crc32. */
#include "gorp/ckpt.h"
#include "gorp/cmd.h"
#include "gorp/err.h"

#include <string.h>

int cmd_inspect(int argc, char **argv) {
  const char *path = NULL;
  int verify = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--verify"))
      verify = 1;
    else if (!path)
      path = argv[i];
    else
      GORP_ERR(GORP_EUSAGE, "inspect: unexpected argument '%s'", argv[i]);
  }
  if (!path) GORP_ERR(GORP_EUSAGE, "usage: gorp inspect FILE.h5 [--verify]");
  return ckpt_inspect(path, verify);
}
