/* The version gorp prints (`gorp --version`) and records in every file it writes (model files,
 * checkpoints, results.h5: the gorp_version attribute). GORP_VERSION (CMake's project(VERSION))
 * and GORP_GIT_COMMIT (empty outside a git checkout) are compile definitions of this one source
 * file (CMakeLists.txt): a new commit reconfigured recompiles it alone. */
#include "gorp/version.h"

const char *gorp_version(void) {
  return GORP_GIT_COMMIT[0] ? "gorp " GORP_VERSION " (git " GORP_GIT_COMMIT ")"
                            : "gorp " GORP_VERSION;
}
