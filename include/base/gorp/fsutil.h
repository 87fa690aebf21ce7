/* Small file-system helpers: run directories, the durable publish step of every file gorp
 * writes (model files, results, checkpoints), and the guarded reads of every input file gorp
 * slurps (configs, orders, tokenizer.json, dataset JSON, Hugging Face config and headers).
 * Not for: HDF5 files (h5io.h), which HDF5 opens itself. */
#ifndef GORP_FSUTIL_H
#define GORP_FSUTIL_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

/* Size limits of the input files gorp reads whole (docs/CONFIG.md and docs/DATA.md list them):
 * far above any real file of the kind, far below what would exhaust memory. */
#define FS_MAX_CONFIG (1u << 20)        /* an INI config or an included one: 1 MiB */
#define FS_MAX_ORDERS (1u << 20)        /* data.orders: 1 MiB */
#define FS_MAX_TOKENIZER (512u << 20)   /* tokenizer.json: 512 MiB */
#define FS_MAX_DATASET (1u << 30)       /* a dataset's train/test/labels.json: 1 GiB */
#define FS_MAX_INSTRUCTIONS (16u << 20) /* instruction_config.json: 16 MiB */
#define FS_MAX_HF_CONFIG (16u << 20)    /* a Hugging Face config.json or index.json: 16 MiB */
#define FS_MAX_TOKEN_IDS                                                                           \
  (256u << 20) /* gorp logits/grad/fit/generate --tokens/--targets: 256 MiB */

/* mkdir -p path (mode 0755); an existing directory is fine, an existing file is an error. */
int fs_mkdirs(const char *path);

/* Makes a finished tmp file durable under its final name (Redis rdbSave's sequence): fsync tmp,
 * rename it over path, fsync the directory. The data is on disk before the name points at it, and
 * the new name is on disk before success is reported. */
int fs_publish(const char *tmp, const char *path);

/* fsync of the folder dir: a rename or new name inside it is on disk once this returns. */
int fs_sync_dir(const char *dir);

/* Writes path durably and atomically: write(f, ctx) fills path.tmp (returning 1 on success, 0
 * when a write failed), which is flushed, closed, checked and published (fs_publish); on failure
 * path is left as it was and path.tmp removed. */
int fs_write_with(const char *path, int (*write)(FILE *f, const void *ctx), const void *ctx);
/* fs_write_with of the n bytes of data. */
int fs_write_file(const char *path, const void *data, size_t n);

/* Opens path read-only when it is a regular file, without ever blocking: a FIFO, device,
 * directory or socket is refused ("<what> '<path>': not a regular file (a FIFO)"), as is a
 * missing or unreadable file, with GORP_EINPUT. *fd is the open descriptor (the caller closes
 * it), *size the file's size in bytes. what names the role, e.g. "tokenizer". */
int fs_open_regular(const char *path, const char *what, int *fd, uint64_t *size);

/* The same check for a file that a library opens itself (HDF5): path must name a regular file;
 * *size (may be NULL) is its size. Nothing is opened, so a FIFO cannot block. */
int fs_check_regular(const char *path, const char *what, uint64_t *size);

/* Reads the whole regular file path (fs_open_regular) into a malloc'd, NUL-terminated buffer of
 * *len bytes; a file of more than max_bytes is refused naming the limit (GORP_EINPUT). The
 * caller frees *buf. */
int fs_read_regular(const char *path, const char *what, size_t max_bytes, char **buf, size_t *len);

/* Reads exactly n bytes at offset of the open file fd (pread, retried when interrupted), for the
 * on-demand readers of large files (safetensors, GGUF), which check offsets against the file's
 * size first: an end of file before n bytes is GORP_EIO naming path ("file changed?"). */
int fs_pread_exact(int fd, uint64_t offset, void *buf, size_t n, const char *path);

/* snprintf into out[n] that fails (GORP_EINPUT, naming the start of the text) instead of
 * truncating a path. */
int fs_path_fmt(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
