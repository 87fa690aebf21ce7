/* Small file-system helpers: run directories and the durable publish step of every file gorp
 * writes (model files, results, checkpoints). */
#ifndef GORP_FSUTIL_H
#define GORP_FSUTIL_H

/* mkdir -p path (mode 0755); an existing directory is fine, an existing file is an error. */
int fs_mkdirs(const char *path);

/* Makes a finished tmp file durable under its final name (Redis rdbSave's sequence): fsync tmp,
 * rename it over path, fsync the directory. The data is on disk before the name points at it, and
 * the new name is on disk before success is reported. */
int fs_publish(const char *tmp, const char *path);

#endif
