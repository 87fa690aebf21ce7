/* gorp inspect FILE.h5 [--verify]: a readable summary of a model file or checkpoint (config,
 * tasks done, shapes, basis sizes per module and task, accuracy matrix); --verify reads every
 * dataset back and checks its crc32. */
#include "gorp/ckpt.h"
#include "gorp/cmd.h"
#include "gorp/err.h"

#include <stddef.h>

typedef struct inspect_args {
  const char *path;
  int verify;
} inspect_args;

static int inspect_main(const void *args) {
  const inspect_args *a = args;
  return ckpt_inspect(a->path, a->verify);
}

static const cmd_arg inspect_table[] = {
    {NULL, CMD_TEXT, offsetof(inspect_args, path), "FILE.h5", "a checkpoint or a model file", 1},
    {"verify", CMD_FLAG, offsetof(inspect_args, verify), NULL,
     "read every dataset back and check its crc32", 0},
};

const cmd_spec cmd_inspect_spec = {
    CMD_SPEC("inspect",
             "summarises a checkpoint or model file; --verify checks every dataset's checksum",
             inspect_table, inspect_args, inspect_main),
    .serial = 1};
