/* Small file-system helpers shared by the commands (run directories).
 * Not for: durable writes of checkpoints/model files (modelfile.c owns that sequence). */
#ifndef GORP_FSUTIL_H
#define GORP_FSUTIL_H

/* mkdir -p path (mode 0755); an existing directory is fine, an existing file is an error. */
int fs_mkdirs(const char *path);

#endif
