/* mkdir -p and the durable publish of finished files (see fsutil.h). */
#include "gorp/fsutil.h"

#include "gorp/err.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
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

int fs_sync_dir(const char *dir) {
  return fsync_path(dir, O_RDONLY | O_DIRECTORY);
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

int fs_write_with(const char *path, int (*write)(FILE *f, const void *ctx), const void *ctx) {
  char tmp[4096 + 8];
  GORP_CALL(fs_path_fmt(tmp, sizeof(tmp), "%s.tmp", path));
  FILE *f = fopen(tmp, "wb");
  if (!f) GORP_ERR(GORP_EIO, "cannot create %s: %s", tmp, strerror(errno));
  int bad = !write(f, ctx) || fflush(f);
  int err = errno;
  if (fclose(f) && !bad) {
    bad = 1;
    err = errno;
  }
  int rc = bad ? GORP_ERROR(GORP_EIO, "cannot write %s: %s", tmp, strerror(err)) : GORP_OK;
  if (!rc) rc = fs_publish(tmp, path);
  if (rc) {
    unlink(tmp);
    GORP_ERR(rc, "could not write %s", path);
  }
  return GORP_OK;
}

typedef struct bytes {
  const void *data;
  size_t n;
} bytes;

static int write_bytes(FILE *f, const void *ctx) {
  const bytes *b = ctx;
  return fwrite(b->data, 1, b->n, f) == b->n;
}

int fs_write_file(const char *path, const void *data, size_t n) {
  const bytes b = {data, n};
  return fs_write_with(path, write_bytes, &b);
}

static const char *file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a file";
}

int fs_check_regular(const char *path, const char *what, uint64_t *size) {
  struct stat st;
  if (stat(path, &st)) GORP_ERR(GORP_EINPUT, "%s '%s': %s", what, path, strerror(errno));
  if (!S_ISREG(st.st_mode))
    GORP_ERR(GORP_EINPUT, "%s '%s': not a regular file (%s)", what, path, file_kind(st.st_mode));
  if (size) *size = (uint64_t)st.st_size;
  return GORP_OK;
}

int fs_open_regular(const char *path, const char *what, int *fd, uint64_t *size) {
  /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer */
  const int f = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (f < 0) GORP_ERR(GORP_EINPUT, "%s '%s': cannot open it: %s", what, path, strerror(errno));
  struct stat st;
  if (fstat(f, &st)) {
    const int err = errno;
    close(f);
    GORP_ERR(GORP_EIO, "%s '%s': cannot stat it: %s", what, path, strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    close(f);
    GORP_ERR(GORP_EINPUT, "%s '%s': not a regular file (%s)", what, path, file_kind(st.st_mode));
  }
  /* regular files never block; clear the flag so that reads behave as usual */
  if (fcntl(f, F_SETFL, fcntl(f, F_GETFL) & ~O_NONBLOCK)) {
    const int err = errno;
    close(f);
    GORP_ERR(GORP_EIO, "%s '%s': fcntl failed: %s", what, path, strerror(err));
  }
  *fd = f;
  *size = (uint64_t)st.st_size;
  return GORP_OK;
}

int fs_read_regular(const char *path, const char *what, size_t max_bytes, char **buf, size_t *len) {
  int fd;
  uint64_t size;
  GORP_CALL(fs_open_regular(path, what, &fd, &size));
  if (size > max_bytes) {
    close(fd);
    GORP_ERR(GORP_EINPUT,
             "%s '%s': %llu bytes is over the limit of %zu bytes for this kind of file", what, path,
             (unsigned long long)size, max_bytes);
  }
  char *p = malloc((size_t)size + 1);
  if (!p) {
    close(fd);
    GORP_ERR(GORP_EMEM, "out of memory reading %s '%s' (%llu bytes)", what, path,
             (unsigned long long)size);
  }
  size_t got = 0;
  const char *why = NULL;
  while (got < size) {
    const ssize_t r = read(fd, p + got, (size_t)size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      why = r < 0 ? strerror(errno) : "the file shrank while being read";
      break;
    }
    got += (size_t)r;
  }
  close(fd);
  if (why) {
    free(p);
    GORP_ERR(GORP_EIO, "%s '%s': read failed: %s", what, path, why);
  }
  p[got] = '\0';
  *buf = p;
  *len = got;
  return GORP_OK;
}

int fs_pread_exact(int fd, uint64_t offset, void *buf, size_t n, const char *path) {
  unsigned char *p = buf;
  while (n) {
    const ssize_t got = pread(fd, p, n, (off_t)offset);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) GORP_ERR(GORP_EIO, "reading %s: %s", path, strerror(errno));
    if (got == 0)
      GORP_ERR(GORP_EIO, "reading %s: unexpected end of file at byte %llu (file changed?)", path,
               (unsigned long long)offset);
    p += got;
    offset += (uint64_t)got;
    n -= (size_t)got;
  }
  return GORP_OK;
}

int fs_path_fmt(char *out, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const int len = vsnprintf(out, n, fmt, ap);
  va_end(ap);
  if (len < 0 || (size_t)len >= n)
    GORP_ERR(GORP_EINPUT, "path longer than %zu bytes: %.200s...", n - 1, out);
  return GORP_OK;
}
