/* mkdir -p (see fsutil.h). */
#include "gorp/fsutil.h"

#include "gorp/err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int fs_mkdirs(const char *path) {
  char buf[4096];
  if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
    GORP_ERR(GORP_EINPUT, "path too long: %s", path);
  for (char *p = buf + 1;; p++) {
    const int end = *p == '\0';
    if (*p == '/' || end) {
      *p = '\0';
      struct stat st;
      if (mkdir(buf, 0755) && errno != EEXIST)
        GORP_ERR(GORP_EIO, "cannot create directory %s: %s", buf, strerror(errno));
      if (stat(buf, &st) || !S_ISDIR(st.st_mode))
        GORP_ERR(GORP_EIO, "%s exists and is not a directory", buf);
      if (end) break;
      *p = '/';
    }
  }
  return GORP_OK;
}
