/* The version `gorp --version` prints. GORP_VERSION (CMake's project(VERSION)) and
 * GORP_GIT_COMMIT (empty outside a git checkout) are compile definitions of the cmd layer only
 * (CMakeLists.txt): a new commit reconfigured recompiles this layer, not the model. */
#include "gorp/cmd.h"

const char *cmd_version(void) {
  return GORP_GIT_COMMIT[0] ? "gorp " GORP_VERSION " (git " GORP_GIT_COMMIT ")"
                            : "gorp " GORP_VERSION;
}
