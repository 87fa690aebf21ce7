/* Checkpoints (see ckpt.h and docs/CHECKPOINT.md). One walk over a state table serves both
 * directions, so that what is saved and what is restored cannot drift apart; the table's owners
 * decide names, shapes and blocks, this file only moves the bytes. With more than one rank every
 * step of the walk is collective (h5io.h): each rank writes or reads its blocks of the logical
 * tensors, and each step ends with every rank agreeing on its outcome. */
#include "gorp/ckpt.h"

#include "gorp/backend.h"
#include "gorp/dist.h"
#include "gorp/err.h"
#include "gorp/out.h"
#include "gorp/fsutil.h"
#include "gorp/h5io.h"
#include "gorp/modelfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct walker {
  int save; /* 1: write the state into file; 0: read it back into memory */
  hid_t file;
  const char *path;
  const dist *d;  /* the ranks sharing the file, or NULL: this process alone */
  float *scratch; /* the entries whose memory layout differs from their blocks' */
} walker;

/* Dataset s, this rank's blocks in x. */
static int walk_data(walker *w, const h5io_data *s, void *x) {
  return w->save ? h5io_write_part(w->file, s, x, w->d, w->path)
                 : h5io_read_part(w->file, s, x, w->d, w->path);
}

/* An int64 attribute of the object `obj` (created as a group when saving and missing); every
 * rank agrees on the outcome. */
static int walk_i64(walker *w, const char *obj, const char *key, int64_t *v) {
  hid_t o = -1;
  int rc = GORP_OK;
  if (w->save && H5Lexists(w->file, obj, H5P_DEFAULT) <= 0 && strcmp(obj, "/"))
    rc = h5io_create_group(w->file, obj, w->path, &o);
  else if ((o = H5Oopen(w->file, obj, H5P_DEFAULT)) < 0)
    rc = w->save ? GORP_ERROR(GORP_EIO, "%s: cannot open %s", w->path, obj)
                 : GORP_ERROR(GORP_EINPUT, "%s: %s is missing or damaged", w->path, obj);
  if (!rc)
    rc = w->save ? h5io_write_attr(o, key, H5T_STD_I64LE, H5T_NATIVE_INT64, v, w->path)
                 : h5io_read_num_attr(o, obj, key, 0, H5T_NATIVE_INT64, v, w->path);
  if (o >= 0) H5Oclose(o);
  char what[STATE_NAME_MAX + 64];
  snprintf(what, sizeof(what), "attribute %s of %s", key, obj);
  return h5io_agree(w->d, rc, w->path, what);
}

/* A scalar entry, stored as int64 whatever its type in memory. */
static int walk_scalar(walker *w, const state_entry *e) {
  int64_t x = e->type == STATE_INT    ? *(int *)e->data
              : e->type == STATE_LONG ? *(long *)e->data
              : e->type == STATE_I64  ? *(int64_t *)e->data
                                      : (int64_t) * (uint64_t *)e->data;
  GORP_CALL(walk_i64(w, e->name, e->key, &x));
  if (w->save) return GORP_OK;
  if (e->type == STATE_INT)
    *(int *)e->data = (int)x;
  else if (e->type == STATE_LONG)
    *(long *)e->data = (long)x;
  else if (e->type == STATE_I64)
    *(int64_t *)e->data = x;
  else
    *(uint64_t *)e->data = (uint64_t)x;
  return GORP_OK;
}

/* Floats of scratch that entry e needs (0: it is transferred from its own memory). */
static size_t scratch_need(const state_entry *e) {
  if (e->live_cols) return (size_t)(e->blocks[0].nr * e->dims[1]);
  if (e->transposed) return (size_t)(e->blocks[0].nr * e->blocks[0].nc);
  return 0;
}

/* A tensor entry. One whose memory is not its block's row-major (nr x nc) (transposed, or with
 * a row stride of dims[1] and *live_cols columns in use) goes through w->scratch. */
static int walk_tensor(walker *w, const state_entry *e) {
  hsize_t dims[2] = {e->dims[0], e->dims[1]};
  state_block b = e->blocks[0];
  const h5io_data s = {e->name,
                       e->type == STATE_DOUBLE ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT,
                       e->ndim,
                       dims,
                       scratch_need(e) ? &b : e->blocks,
                       e->n_blocks};
  if (!scratch_need(e)) return walk_data(w, &s, e->data);
  GORP_CHECK(e->type == STATE_FLOAT && e->n_blocks == 1, GORP_ELIB,
             "%s: state entry %s: only a float tensor of one block can be transposed or grow",
             w->path, e->name);
  /* x: memory, (nr, ld) growing or (nc, nr) transposed; y: the block row-major (nr, nc) */
  float *x = (float *)e->data + b.mem, *y = w->scratch;
  const uint64_t ld = e->dims[1]; /* memory row stride of a growing matrix */
  if (e->live_cols) {
    const int r = *e->live_cols;
    if (!w->save && (r < 0 || (uint64_t)r > ld))
      GORP_ERR(GORP_EINPUT, "%s: %s has %d columns, more than its axis (%d)", w->path, e->name, r,
               (int)ld);
    if (!w->save) memset(x, 0, (size_t)(b.nr * ld) * sizeof(float));
    dims[1] = b.cols = b.nc = (uint64_t)r;
    if (r == 0) return GORP_OK; /* nothing stored */
  }
  const uint64_t nr = b.nr, nc = b.nc;
  if (w->save)
    for (uint64_t i = 0; i < nr; i++)
      for (uint64_t j = 0; j < nc; j++)
        y[i * nc + j] = e->live_cols ? x[i * ld + j] : x[j * nr + i];
  b.mem = 0;
  GORP_CALL(walk_data(w, &s, y));
  if (!w->save)
    for (uint64_t i = 0; i < nr; i++)
      for (uint64_t j = 0; j < nc; j++) {
        if (e->live_cols)
          x[i * ld + j] = y[i * nc + j];
        else
          x[j * nr + i] = y[i * nc + j];
      }
  return GORP_OK;
}

/* Every entry of tab, in order. */
static int walk_table(walker *w, const state_table *tab) {
  for (int i = 0; i < tab->n; i++) {
    const state_entry *e = &tab->e[i];
    GORP_CALL(e->key[0] ? walk_scalar(w, e) : walk_tensor(w, e));
  }
  return GORP_OK;
}

/* The scratch that walking tab needs, or NULL with *rc set (out of memory). */
static float *alloc_scratch(const state_table *tab, const char *path, int *rc) {
  size_t n = 1;
  for (int i = 0; i < tab->n; i++)
    if (!tab->e[i].key[0] && scratch_need(&tab->e[i]) > n) n = scratch_need(&tab->e[i]);
  float *x = malloc(n * sizeof(float));
  if (!x) *rc = GORP_ERROR(GORP_EMEM, "out of memory walking the state of %s", path);
  return x;
}

static void ckpt_dir(const gorp_config *c, char *buf, size_t n) {
  snprintf(buf, n, "%s/checkpoints", c->run.out_dir);
}

/* Sequence numbers of the checkpoints in dir, newest first. */
static int list_checkpoints(const char *dir, long **seq, int *n) {
  *seq = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d) return GORP_OK;
  int cap = 0;
  for (struct dirent *e; (e = readdir(d));) {
    long s;
    char tail[8], name[64];
    /* exactly the names ckpt_save writes: six digits or more (past 999999 the name grows) */
    if (sscanf(e->d_name, "ckpt_%ld.h%1s", &s, tail) != 2 || strcmp(tail, "5") || s < 1 ||
        s > CKPT_MAX_SEQUENCE)
      continue;
    snprintf(name, sizeof(name), "ckpt_%06ld.h5", s);
    if (strcmp(name, e->d_name)) continue;
    if (*n == cap) {
      long *g = realloc(*seq, (size_t)(cap = cap ? 2 * cap : 16) * sizeof(long));
      if (!g) {
        closedir(d);
        GORP_ERR(GORP_EMEM, "out of memory listing %s", dir);
      }
      *seq = g;
    }
    (*seq)[(*n)++] = s;
  }
  closedir(d);
  for (int i = 0; i < *n; i++) /* newest first */
    for (int j = i + 1; j < *n; j++)
      if ((*seq)[j] > (*seq)[i]) {
        long tmp = (*seq)[i];
        (*seq)[i] = (*seq)[j];
        (*seq)[j] = tmp;
      }
  return GORP_OK;
}

int ckpt_exists(const gorp_config *c) {
  char dir[4096];
  ckpt_dir(c, dir, sizeof(dir));
  long *seq;
  int n;
  if (list_checkpoints(dir, &seq, &n)) return 0;
  free(seq);
  if (n) return 1;
  snprintf(dir + strlen(dir), sizeof(dir) - strlen(dir), "/LATEST");
  return access(dir, F_OK) == 0;
}

/* Fault injection for the crash tests (SQLite's habit): GORP_FAULT_SAVE_ABORT=k makes the k-th
 * checkpoint save of this process abort() halfway through writing its file, as a crash would. */
static void fault_point(void) {
  static int saves;
  const char *k = getenv("GORP_FAULT_SAVE_ABORT");
  if (k && ++saves == atoi(k)) {
    fprintf(stderr, "gorp: GORP_FAULT_SAVE_ABORT=%s: aborting inside checkpoint save %d\n", k,
            saves);
    abort();
  }
}

/* Rank 0's n values on every rank (d NULL or one rank: nothing to do). */
static int from_root(const dist *d, long *v, int n) {
  return dist_bcast(d, v, (size_t)n * sizeof(long));
}

static int is_root(const dist *d) {
  return !d || d->rank == 0;
}

int ckpt_lock(const gorp_config *c, const dist *d) {
  char path[4200];
  snprintf(path, sizeof(path), "%s/gorp.lock", c->run.out_dir);
  int rc = GORP_OK;
  if (is_root(d)) {
    /* non-blocking open, regular file: whatever is there must not hang us */
    const int fd = open(path, O_RDWR | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0644);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
      rc = GORP_ERROR(GORP_EIO, "cannot open the lock file %s: %s", path,
                      fd < 0 ? strerror(errno) : "not a regular file");
    } else if (flock(fd, LOCK_EX | LOCK_NB)) {
      char holder[512] = "";
      const int busy = errno == EWOULDBLOCK, err = errno;
      const ssize_t got = busy ? pread(fd, holder, sizeof(holder) - 1, 0) : -1;
      holder[got > 0 ? got : 0] = '\0';
      holder[strcspn(holder, "\n")] = '\0';
      rc = !busy ? GORP_ERROR(GORP_EIO, "cannot lock %s: %s", path, strerror(err))
                 : GORP_ERROR(GORP_EIO,
                              "run.out_dir %s is in use by another gorp run (%s, says %s): wait "
                              "for it to end or choose another run.out_dir",
                              c->run.out_dir, holder[0] ? holder : "holder unknown", path);
    } else {
      /* held until this process ends (the descriptor is never closed): who holds it, for the
       * message above */
      char host[256] = "?", when[64] = "?", text[512];
      const time_t now = time(NULL);
      struct tm tm;
      if (gethostname(host, sizeof(host) - 1)) snprintf(host, sizeof(host), "?");
      if (gmtime_r(&now, &tm)) strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
      const int len =
          snprintf(text, sizeof(text), "pid %ld on host %s since %s\n", (long)getpid(), host, when);
      if (ftruncate(fd, 0) || pwrite(fd, text, (size_t)len, 0) != len)
        rc = GORP_ERROR(GORP_EIO, "cannot write %s: %s", path, strerror(errno));
    }
    if (rc && fd >= 0) close(fd);
  }
  return h5io_agree(d, rc, path, "locking run.out_dir");
}

/* A checkpoint is lean (docs/CHECKPOINT.md) when the model was read from a file (model.init) and
 * some tensor is frozen: it stores the trainable tensors and refers to that file for the rest.
 * The trainer's trainable set (model_set_trainable) decides, so no method is named here. */
static int is_lean(const model *m) {
  for (int i = 0; m->from_file && i < m->n_tensors; i++)
    if (!m->tensors[i].trainable) return 1;
  return 0;
}

/* /base: model.init as the config names it and resolved (rank 0's, so that every rank writes
 * the same attributes), with the checksum of the weights read from it when the run started. */
static int write_base(hid_t f, const gorp_config *c, const dist *d, const model *m,
                      const char *path) {
  modelfile_base b = {.checksum = m->file_checksum};
  snprintf(b.path, sizeof(b.path), "%s", c->model.init);
  if (!realpath(c->model.init, b.resolved)) snprintf(b.resolved, sizeof(b.resolved), "%s", b.path);
  GORP_CALL(dist_bcast(d, b.resolved, sizeof(b.resolved)));
  return h5io_agree(d, modelfile_write_base(f, &b, path), path, "writing /base");
}

/* Writes the checkpoint into tmp (every rank of d its blocks) and publishes it as path. */
static int write_file(const char *tmp, const char *path, const gorp_config *c, const dist *d,
                      const ckpt_state *s, const ckpt_pos *p, long seq) {
  hid_t f;
  GORP_CALL(h5io_create_par(tmp, d, &f));
  walker w = {.save = 1, .file = f, .path = tmp, .d = d};
  char *text = NULL;
  state_table tab;
  state_init(&tab);
  ckpt_pos at = *p;
  int rc = config_to_text(c, &text);
  if (!rc) rc = s->describe(s->arg, 0, &at, &tab);
  if (!rc) w.scratch = alloc_scratch(&tab, tmp, &rc);
  /* what can fail on one rank alone comes first: every metadata change is made by all or none */
  rc = h5io_agree(d, rc, tmp, "preparing the checkpoint");
  if (!rc)
    rc = h5io_agree(d, modelfile_write_header(f, "checkpoint", tmp), tmp, "writing the header");
  const int lean = is_lean(s->m);
  if (!rc)
    rc = modelfile_write_group(f, s->m, lean ? MODELFILE_TRAINABLE : MODELFILE_ALL, NULL, d, tmp);
  if (!rc && lean) rc = write_base(f, c, d, s->m, tmp);
  fault_point();
  if (!rc) {
    hid_t g;
    const uint64_t hash[2] = {config_hash(c), config_scope_hash(c, CONFIG_RUN)};
    rc = h5io_create_group(f, "config", tmp, &g);
    if (!rc) rc = h5io_write_str_attr(g, "text", text, tmp);
    if (!rc) rc = h5io_write_attr(g, "hash", H5T_STD_U64LE, H5T_NATIVE_UINT64, &hash[0], tmp);
    if (!rc) rc = h5io_write_attr(g, "run_hash", H5T_STD_U64LE, H5T_NATIVE_UINT64, &hash[1], tmp);
    if (g >= 0) H5Gclose(g);
    if (!rc) rc = h5io_write_str_attr(f, "method", c->run.method, tmp);
    rc = h5io_agree(d, rc, tmp, "writing /config");
  }
  /* rank 0's thread counts: every rank writes the same attribute values */
  int threads[2];
  backend_threads(&threads[0], &threads[1]);
  long th[2] = {threads[0], threads[1]};
  if (!rc) rc = from_root(d, th, 2);
  int64_t pos[8] = {p->task, p->step, p->done, p->lora_pairs, seq, th[0], th[1], p->eval_task};
  const char *keys[8] = {"task",     "step",           "task_done",        "lora_pairs",
                         "sequence", "threads_openmp", "threads_openblas", "eval_task"};
  for (int i = 0; i < 8 && !rc; i++) rc = walk_i64(&w, "/", keys[i], &pos[i]);
  if (!rc) rc = walk_table(&w, &tab);
  free(text);
  free(w.scratch);
  state_free(&tab);
  return h5io_close_publish(f, rc, tmp, path, d);
}

/* LATEST holds the newest checkpoint's file name; replaced atomically like the checkpoint. */
static int write_latest(const char *dir, const char *name) {
  char tmp[4200], path[4200];
  snprintf(tmp, sizeof(tmp), "%s/LATEST.tmp", dir);
  snprintf(path, sizeof(path), "%s/LATEST", dir);
  FILE *f = fopen(tmp, "w");
  if (!f) GORP_ERR(GORP_EIO, "cannot create %s: %s", tmp, strerror(errno));
  const int bad = fprintf(f, "%s\n", name) < 0;
  if (fclose(f) || bad) {
    const int err = errno;
    unlink(tmp);
    GORP_ERR(GORP_EIO, "cannot write %s: %s", tmp, strerror(err));
  }
  return fs_publish(tmp, path);
}

int ckpt_save(const gorp_config *c, const dist *d, const ckpt_state *s, const ckpt_pos *p) {
  char dir[4096], path[4200], tmp[4300];
  ckpt_dir(c, dir, sizeof(dir));
  long *seq = NULL;
  int n = 0;
  long head[2] = {GORP_OK, 0}; /* rank 0's outcome and the new checkpoint's number */
  if (is_root(d)) {
    head[0] = fs_mkdirs(dir);
    if (!head[0]) head[0] = list_checkpoints(dir, &seq, &n);
    head[1] = n ? seq[0] + 1 : 1;
  }
  int rc = from_root(d, head, 2);
  if (!rc && head[0]) rc = GORP_ERROR((int)head[0], "cannot save a checkpoint in %s", dir);
  if (rc) {
    free(seq);
    return rc;
  }
  const long next = head[1];
  if (next > CKPT_MAX_SEQUENCE) {
    free(seq);
    GORP_ERR(GORP_EIO,
             "%s holds checkpoint %ld, the last number gorp writes: start a new run "
             "directory from it (model.init = its path)",
             dir, next - 1);
  }
  snprintf(path, sizeof(path), "%s/ckpt_%06ld.h5", dir, next);
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  rc = write_file(tmp, path, c, d, s, p, next);
  if (rc) {
    free(seq);
    GORP_ERR(rc, "could not save checkpoint %s (the previous ones are untouched)", path);
  }
  if (is_root(d)) {
    snprintf(tmp, sizeof(tmp), "ckpt_%06ld.h5", next);
    rc = write_latest(dir, tmp);
    /* the oldest beyond run.checkpoint_keep go, only after LATEST names the new one */
    for (int i = c->run.checkpoint_keep - 1; !rc && i < n; i++) {
      snprintf(path, sizeof(path), "%s/ckpt_%06ld.h5", dir, seq[i]);
      unlink(path);
    }
  }
  free(seq);
  return h5io_agree(d, rc, dir, "updating LATEST");
}

/* The keys of a config change, listed for the message; unsafe once one is refused whatever
 * --force-config says. */
typedef struct changed_keys {
  char list[2048];
  int unsafe;
} changed_keys;

static void add_changed(const config_change *ch, void *arg) {
  changed_keys *k = arg;
  k->unsafe |= config_key_resume(ch->key) == CONFIG_RESUME_NEVER;
  const size_t len = strlen(k->list);
  snprintf(k->list + len, sizeof(k->list) - len, "%s%s", len ? ", " : "", ch->key);
}

/* Compares the keys of the run hash (config.h CONFIG_RUN, docs/CHECKPOINT.md) with the config the
 * checkpoint stores: the others (run.out_dir, logging, the rank layout, pretrain.*) may differ. */
static int check_config(hid_t f, const char *path, const gorp_config *c, int force) {
  hid_t g = H5Gopen2(f, "config", H5P_DEFAULT);
  if (g < 0) GORP_ERR(GORP_EINPUT, "%s has no /config group", path);
  char *stored = NULL, *now = NULL;
  int rc = h5io_read_str_attr(g, "/config", "text", &stored, path);
  H5Gclose(g);
  if (!rc) rc = config_scope_text(c, CONFIG_RUN, &now);
  changed_keys diff = {.unsafe = 0};
  if (!rc && config_text_diff(now, stored, add_changed, &diff)) {
    if (diff.unsafe || !force)
      rc = GORP_ERROR(
          GORP_EINPUT, "%s was written with another config: %s differ%s", path, diff.list,
          diff.unsafe ? " (these change what the run computes: start a new run directory)"
                      : "; these keys name where inputs lie or the backend: if the inputs "
                        "are the same, pass --force-config to resume");
    else
      out_printf("resuming with changed input locations: %s\n", diff.list);
  }
  free(stored);
  free(now);
  return rc;
}

/* A checkpoint records the threads it was computed with (backend_threads). Another count is
 * allowed, but the sums then round differently: say so, once, on rank 0. Checkpoints written
 * before the count was recorded say nothing. */
static int check_threads(hid_t f, const char *path, const dist *d) {
  int64_t was[2] = {0, 0};
  const char *keys[2] = {"threads_openmp", "threads_openblas"};
  for (int i = 0; i < 2; i++)
    if (H5Aexists(f, keys[i]) > 0)
      GORP_CALL(h5io_read_num_attr(f, "/", keys[i], 0, H5T_NATIVE_INT64, &was[i], path));
  int now[2];
  backend_threads(&now[0], &now[1]);
  int range[4] = {now[0], now[1], -now[0], -now[1]}; /* max and -min over the ranks */
  GORP_CALL(dist_max_ints(d, range, 4));
  int differ = 0;
  for (int i = 0; i < 2; i++) differ |= was[i] && (range[i] != was[i] || -range[2 + i] != was[i]);
  if (differ && is_root(d))
    fprintf(stderr,
            "gorp: warning: %s was written with %lld OpenMP / %lld OpenBLAS threads per rank, "
            "resuming with %d / %d%s: results will not be bit-identical to an uninterrupted run "
            "(the sums round differently); set OMP_NUM_THREADS and OPENBLAS_NUM_THREADS as when "
            "it was written to keep them so\n",
            path, (long long)was[0], (long long)was[1], range[0], range[1],
            range[0] != -range[2] || range[1] != -range[3] ? " (at most, over the ranks)" : "");
  return GORP_OK;
}

/* A lean checkpoint's base must be the weights the model was read from: the same checksum. c:
 * the resuming run's config (NULL: gorp inspect --verify, the model read from b->resolved). */
static int check_base(const char *path, const modelfile_base *b, const model *m,
                      const gorp_config *c) {
  const char *now = c ? c->model.init : b->resolved;
  if (!m->from_file)
    GORP_ERR(GORP_EINPUT,
             "%s stores only the trained weights; the others are those of the base model file "
             "%s (checksum 0x%08x), but this run's model.init is %s",
             path, b->resolved, b->checksum, now);
  if (m->file_checksum != b->checksum)
    GORP_ERR(GORP_EINPUT,
             "%s stores only the trained weights; the others are those of the base model file "
             "%s (model.init %s) with checksum 0x%08x, but this run's model.init %s holds other "
             "weights (checksum 0x%08x): restore the base it was trained from",
             path, b->resolved, b->path, b->checksum, now, m->file_checksum);
  return GORP_OK;
}

/* Reads checkpoint path into s and p: the one path by which a resume and gorp inspect --verify
 * accept a checkpoint. c is the resuming run's config, compared with the stored one (NULL: s was
 * built from the stored one; nothing to compare). */
static int load_file(const char *path, const gorp_config *c, int force, const dist *d,
                     const ckpt_state *s, ckpt_pos *p) {
  hid_t f;
  GORP_CALL(h5io_open_read_par(path, "checkpoint", d, &f));
  walker w = {.save = 0, .file = f, .path = path, .d = d};
  int rc = modelfile_check_header(f, path);
  char *kind = NULL;
  if (!rc) rc = h5io_read_str_attr(f, "the root group", "gorp_file_kind", &kind, path);
  if (!rc && strcmp(kind, "checkpoint"))
    rc = GORP_ERROR(GORP_EINPUT, "%s is a %s file, not a checkpoint", path, kind);
  free(kind);
  if (!rc && c) rc = check_config(f, path, c, force);
  modelfile_base base;
  int lean = 0;
  if (!rc) rc = modelfile_read_base(f, path, &base, &lean);
  if (!rc && lean) rc = check_base(path, &base, s->m, c);
  rc = h5io_agree(d, rc, path, "checking the header, config and base");
  int64_t pos[5] = {0};
  const char *keys[5] = {"task", "step", "task_done", "lora_pairs", "eval_task"};
  /* checkpoints older than eval_task were never stopped inside an evaluation */
  const int n_keys = !rc && H5Aexists(f, "eval_task") > 0 ? 5 : 4;
  for (int i = 0; i < n_keys && !rc; i++) rc = walk_i64(&w, "/", keys[i], &pos[i]);
  p->losses = NULL;
  state_table tab;
  state_init(&tab);
  if (!rc) {
    p->task = (int)pos[0];
    p->step = (int)pos[1];
    p->done = (int)pos[2];
    p->lora_pairs = (int)pos[3];
    p->eval_task = (int)pos[4];
    struct stat st; /* the losses (step floats) are in the file: a bound before allocating */
    if (stat(path, &st) || pos[1] < 0 || (uint64_t)pos[1] > (uint64_t)st.st_size / sizeof(float) ||
        pos[0] != p->task || pos[3] != (int)pos[3] || (pos[2] != 0 && pos[2] != 1) || pos[4] < 0 ||
        pos[4] != p->eval_task || (pos[4] && pos[2] != 1))
      rc = GORP_ERROR(GORP_EINPUT,
                      "%s: position attributes task %" PRId64 ", step %" PRId64
                      ", task_done %" PRId64 ", lora_pairs %" PRId64 ", eval_task %" PRId64
                      " are out of range",
                      path, pos[0], pos[1], pos[2], pos[3], pos[4]);
    if (!rc) rc = s->describe(s->arg, 1, p, &tab);
    if (!rc) w.scratch = alloc_scratch(&tab, path, &rc);
    rc = h5io_agree(d, rc, path, "preparing the state");
  }
  if (!rc)
    rc = modelfile_read_tensors(f, s->m, lean ? MODELFILE_TRAINABLE : MODELFILE_ALL, d, path);
  if (!rc) rc = walk_table(&w, &tab);
  if (!rc && c) rc = check_threads(f, path, d); /* a resume, not inspect --verify */
  free(w.scratch);
  state_free(&tab);
  H5Fclose(f);
  if (rc) {
    free(p->losses);
    p->losses = NULL;
  }
  return rc;
}

/* LATEST's file name and the checkpoints' numbers, newest first: read by rank 0 and shared, so
 * that every rank tries the same files in the same order. */
static int read_listing(const char *dir, const dist *d, char *name, size_t size, long **seq,
                        int *n) {
  long head[2] = {GORP_OK, 0}; /* rank 0's outcome and the number of checkpoints */
  *seq = NULL;
  *n = 0;
  name[0] = '\0';
  if (is_root(d)) {
    char path[4200];
    snprintf(path, sizeof(path), "%s/LATEST", dir);
    /* non-blocking and regular files only: a FIFO put there must not hang the resume */
    const int fd = open(path, O_RDONLY | O_NONBLOCK);
    struct stat st;
    const int regular = fd >= 0 && !fstat(fd, &st) && S_ISREG(st.st_mode);
    const ssize_t got = regular ? read(fd, name, size - 1) : -1;
    if (fd >= 0) close(fd);
    name[got > 0 ? got : 0] = '\0';
    name[strcspn(name, "\n")] = '\0';
    if (!name[0])
      out_printf(
          "%s is missing, empty or not a regular file; looking for the newest good checkpoint "
          "in %s\n",
          path, dir);
    head[0] = list_checkpoints(dir, seq, n);
    head[1] = *n;
  }
  if (!d || d->size == 1) return (int)head[0];
  GORP_CALL(from_root(d, head, 2));
  if (head[0]) GORP_ERR((int)head[0], "cannot list the checkpoints in %s", dir);
  GORP_CALL(dist_bcast(d, name, size));
  int rc = GORP_OK;
  if (!is_root(d)) {
    *n = (int)head[1];
    if (!(*seq = calloc((size_t)*n + 1, sizeof(long))))
      rc = GORP_ERROR(GORP_EMEM, "out of memory listing %s", dir);
  }
  rc = h5io_agree(d, rc, dir, "listing the checkpoints");
  if (!rc) rc = from_root(d, *seq, *n);
  if (rc) {
    free(*seq);
    *seq = NULL;
  }
  return rc;
}

int ckpt_load(const gorp_config *c, int force_config, const dist *d, const ckpt_state *s,
              ckpt_pos *p) {
  char dir[4096], path[4200], name[256];
  ckpt_dir(c, dir, sizeof(dir));
  long *seq;
  int n;
  GORP_CALL(read_listing(dir, d, name, sizeof(name), &seq, &n));
  /* LATEST's file first, then the others newest first */
  int rc = GORP_EINPUT;
  if (name[0]) {
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path)) {
      free(seq);
      GORP_ERR(GORP_EINPUT, "%s/LATEST names '%s': the path is longer than %zu bytes", dir, name,
               sizeof(path) - 1);
    }
    rc = load_file(path, c, force_config, d, s, p);
    if (rc == GORP_OK)
      out_printf("resuming from %s\n", path);
    else if (rc != GORP_EINPUT) {
      free(seq);
      return rc;
    }
  }
  for (int i = 0; rc && i < n; i++) {
    char other[64];
    snprintf(other, sizeof(other), "ckpt_%06ld.h5", seq[i]);
    if (!strcmp(other, name)) continue;
    snprintf(path, sizeof(path), "%s/%s", dir, other);
    out_printf("falling back to %s\n", path);
    rc = load_file(path, c, force_config, d, s, p);
    if (rc == GORP_OK) out_printf("resuming from %s (an earlier checkpoint than LATEST's)\n", path);
  }
  free(seq);
  if (rc) GORP_ERR(rc, "no usable checkpoint in %s (see the messages above)", dir);
  return GORP_OK;
}

int ckpt_load_file(const char *path, const ckpt_state *s, ckpt_pos *p) {
  return load_file(path, NULL, 0, NULL, s, p);
}

/* ---- gorp inspect's reading ---- */

int ckpt_inspect_open(const char *path, hid_t *file, char **kind, model_config *mc) {
  *kind = NULL;
  GORP_CALL(h5io_open_read(path, "file", file));
  int rc = modelfile_check_header(*file, path);
  if (!rc) rc = h5io_read_str_attr(*file, "the root group", "gorp_file_kind", kind, path);
  if (!rc) rc = modelfile_read_config(path, mc);
  if (rc) {
    H5Fclose(*file);
    free(*kind);
    *kind = NULL;
  }
  return rc;
}

int ckpt_config_text(hid_t file, const char *path, char **text) {
  *text = NULL;
  hid_t g = H5Lexists(file, "config", H5P_DEFAULT) > 0 ? H5Gopen2(file, "config", H5P_DEFAULT) : -1;
  if (g < 0) GORP_ERR(GORP_EINPUT, "%s has no /config group (damaged file?)", path);
  const int rc = h5io_read_str_attr(g, "/config", "text", text, path);
  H5Gclose(g);
  return rc;
}

void ckpt_read_header(hid_t f, const char *path, ckpt_header *h) {
  *h = (ckpt_header){0};
  int64_t *v[4] = {&h->task, &h->step, &h->task_done, &h->lora_pairs};
  const char *keys[4] = {"task", "step", "task_done", "lora_pairs"};
  for (int i = 0; i < 4; i++) h5io_read_num_attr(f, "/", keys[i], 0, H5T_NATIVE_INT64, v[i], path);
  h5io_read_str_attr(f, "/", "method", &h->method, path);
  hid_t g = H5Gopen2(f, "config", H5P_DEFAULT);
  if (g >= 0) {
    h5io_read_str_attr(g, "/config", "text", &h->config_text, path);
    h5io_read_num_attr(g, "/config", "hash", 0, H5T_NATIVE_UINT64, &h->hash, path);
    if (H5Aexists(g, "run_hash") > 0) /* older checkpoints lack it and the thread counts */
      h5io_read_num_attr(g, "/config", "run_hash", 0, H5T_NATIVE_UINT64, &h->run_hash, path);
    H5Gclose(g);
  }
  const char *tkeys[3] = {"threads_openmp", "threads_openblas", "eval_task"};
  int64_t *tv[3] = {&h->threads[0], &h->threads[1], &h->eval_task};
  for (int i = 0; i < 3; i++)
    if (H5Aexists(f, tkeys[i]) > 0)
      h5io_read_num_attr(f, "/", tkeys[i], 0, H5T_NATIVE_INT64, tv[i], path);
}

void ckpt_header_free(ckpt_header *h) {
  free(h->method);
  free(h->config_text);
  *h = (ckpt_header){0};
}

int ckpt_read_bases(hid_t f, ckpt_basis **bases, int *n) {
  *bases = NULL;
  *n = 0;
  if (H5Lexists(f, "gorp", H5P_DEFAULT) <= 0) return GORP_OK;
  hid_t g = H5Gopen2(f, "gorp", H5P_DEFAULT);
  H5G_info_t gi = {0};
  if (g < 0 || H5Gget_info(g, &gi) < 0) {
    if (g >= 0) H5Gclose(g);
    return GORP_OK;
  }
  *bases = calloc(gi.nlinks ? gi.nlinks : 1, sizeof(**bases));
  if (!*bases) {
    H5Gclose(g);
    GORP_ERR(GORP_EMEM, "out of memory listing the bases");
  }
  for (hsize_t i = 0; i < gi.nlinks; i++) {
    ckpt_basis *b = &(*bases)[(*n)++];
    H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, b->name, sizeof(b->name),
                       H5P_DEFAULT);
    hid_t o = H5Gopen2(g, b->name, H5P_DEFAULT);
    int64_t cols = 0;
    h5io_read_num_attr(o, b->name, "columns", 0, H5T_NATIVE_INT64, &cols, "");
    b->columns = (long long)cols;
    b->len = -1;
    if (H5Lexists(o, "basis", H5P_DEFAULT) > 0) {
      hid_t d = H5Dopen2(o, "basis", H5P_DEFAULT), sp = H5Dget_space(d);
      hsize_t dims[2] = {0};
      if (H5Sget_simple_extent_ndims(sp) == 2 && H5Sget_simple_extent_dims(sp, dims, NULL) == 2)
        b->len = (long long)dims[0];
      H5Sclose(sp);
      H5Dclose(d);
    }
    for (int t = 1; t < 100; t++) {
      char key[32];
      snprintf(key, sizeof(key), "task_%02d_end", t);
      if (H5Aexists(o, key) <= 0) break;
      int64_t e = 0;
      h5io_read_num_attr(o, b->name, key, 0, H5T_NATIVE_INT64, &e, "");
      b->ends[b->n_ends++] = (long long)e;
    }
    H5Gclose(o);
  }
  H5Gclose(g);
  return GORP_OK;
}

/* The shape and element size of dataset name under loc, bounded by the file's size (a shape that
 * does not fit the file is damage, not a reason to allocate). */
static int dataset_shape(hid_t loc, const char *name, hsize_t file_size, const char *path,
                         int *ndim, hsize_t *dims, size_t *n, size_t *esize) {
  const hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
  const hid_t space = d < 0 ? -1 : H5Dget_space(d), type = d < 0 ? -1 : H5Dget_type(d);
  *ndim = space < 0 ? -1 : H5Sget_simple_extent_dims(space, dims, NULL);
  *esize = type < 0 ? 0 : H5Tget_size(type);
  if (space >= 0) H5Sclose(space);
  if (type >= 0) H5Tclose(type);
  if (d >= 0) H5Dclose(d);
  if (*ndim < 0 || *esize == 0)
    GORP_ERR(GORP_EINPUT, "%s: cannot read dataset %s (damaged file?)", path, name);
  *n = 1;
  for (int i = 0; i < *ndim; i++) {
    if (dims[i] && *n > file_size / dims[i] / *esize)
      GORP_ERR(GORP_EINPUT, "%s: dataset %s is larger than the file (damaged file?)", path, name);
    *n *= (size_t)dims[i];
  }
  return GORP_OK;
}

void ckpt_read_matrix(hid_t f, const char *name, const char *path, double **acc, int *rows,
                      int *cols) {
  *acc = NULL;
  *rows = *cols = 0;
  hsize_t file_size = 0;
  const char *slash = strchr(name, '/');
  char group[64] = "";
  if (slash && (size_t)(slash - name) < sizeof(group)) memcpy(group, name, (size_t)(slash - name));
  if ((group[0] && H5Lexists(f, group, H5P_DEFAULT) <= 0) || H5Lexists(f, name, H5P_DEFAULT) <= 0 ||
      H5Fget_filesize(f, &file_size) < 0)
    return;
  int ndim;
  hsize_t dims[H5S_MAX_RANK];
  size_t n, esize;
  if (dataset_shape(f, name, file_size, path, &ndim, dims, &n, &esize) || ndim != 2) return;
  double *a = malloc((n ? n : 1) * sizeof(double));
  if (a && !h5io_read_doubles(f, name, 2, dims, a, path)) {
    *acc = a;
    *rows = (int)dims[0];
    *cols = (int)dims[1];
    return;
  }
  free(a);
}

typedef struct visit_ctx {
  const char *path;
  int verify;
  hsize_t file_size;
  ckpt_datasets *x;
} visit_ctx;

/* Every dataset: counted, and with --verify read back and checked against its crc32. */
static herr_t count_visit(hid_t loc, const char *name, const H5O_info_t *info, void *op) {
  visit_ctx *v = op;
  if (info->type != H5O_TYPE_DATASET) return 0;
  v->x->n++;
  int ndim;
  hsize_t dims[H5S_MAX_RANK];
  size_t n, esize;
  int rc = dataset_shape(loc, name, v->file_size, v->path, &ndim, dims, &n, &esize);
  if (!rc) v->x->values += n;
  if (!rc && v->verify) {
    void *buf = malloc((n ? n : 1) * esize);
    rc = !buf         ? GORP_EMEM
         : esize == 8 ? h5io_read_doubles(loc, name, ndim, dims, buf, v->path)
                      : h5io_read_floats(loc, name, ndim, dims, buf, v->path);
    free(buf);
  }
  rc ? v->x->bad++ : v->x->verified++;
  return 0;
}

int ckpt_count_datasets(hid_t f, const char *path, int verify, ckpt_datasets *x) {
  *x = (ckpt_datasets){0};
  visit_ctx v = {.path = path, .verify = verify, .x = x};
  if (H5Fget_filesize(f, &v.file_size) < 0 ||
      H5Ovisit(f, H5_INDEX_NAME, H5_ITER_INC, count_visit, &v) < 0)
    GORP_ERR(GORP_EINPUT, "%s: cannot list its objects (damaged file?)", path);
  return GORP_OK;
}
