/* mkdir -p and the durable publish of finished files (see fsutil.h). */
#include "gorp/fsutil.h"

#include "gorp/err.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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

static int fsync_path(const char *path, int flags) {
  const int fd = open(path, flags);
  if (fd < 0) GORP_ERR(GORP_EIO, "cannot open %s to fsync it: %s", path, strerror(errno));
  const int bad = fsync(fd) && errno != EINVAL; /* EINVAL: cannot sync (directories on some fs) */
  const int err = errno;
  close(fd);
  if (bad) GORP_ERR(GORP_EIO, "fsync of %s failed: %s", path, strerror(err));
  return GORP_OK;
}

int fs_publish(const char *tmp, const char *path) {
  GORP_CALL(fsync_path(tmp, O_RDONLY));
  if (rename(tmp, path))
    GORP_ERR(GORP_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
  char *copy = strdup(path);
  if (!copy) GORP_ERR(GORP_EMEM, "out of memory saving %s", path);
  const int rc = fsync_path(dirname(copy), O_RDONLY | O_DIRECTORY);
  free(copy);
  return rc;
}
