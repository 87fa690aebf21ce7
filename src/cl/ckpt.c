/* Checkpoints (see ckpt.h and docs/CHECKPOINT.md). One walk over the training state serves both
 * directions, so that what is saved and what is restored cannot drift apart. With more than one
 * rank every step of the walk is collective (h5io.h): each rank writes or reads its blocks of the
 * logical tensors, and each step ends with every rank agreeing on its outcome. */
#include "gorp/ckpt.h"

#include "gorp/backend.h"
#include "gorp/dist.h"
#include "gorp/err.h"
#include "gorp/fsutil.h"
#include "gorp/h5io.h"
#include "gorp/modelfile.h"
#include "gorp/out.h"

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
  float *scratch; /* transposes and basis columns */
} walker;

/* Dataset s, this rank's blocks in x. */
static int walk_data(walker *w, const h5io_data *s, void *x) {
  return w->save ? h5io_write_part(w->file, s, x, w->d, w->path)
                 : h5io_read_part(w->file, s, x, w->d, w->path);
}

/* A dataset that every rank holds whole. */
static int walk_whole(walker *w, const char *name, hid_t type, int ndim, const hsize_t *dims,
                      void *x) {
  const h5io_block b = h5io_whole(ndim, dims);
  const h5io_data s = {name, type, ndim, dims, &b, 1};
  return walk_data(w, &s, x);
}

static int walk_floats(walker *w, const char *name, int ndim, const hsize_t *dims, float *x) {
  return walk_whole(w, name, H5T_NATIVE_FLOAT, ndim, dims, x);
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
  char what[320];
  snprintf(what, sizeof(what), "attribute %s of %s", key, obj);
  return h5io_agree(w->d, rc, w->path, what);
}

static int walk_int(walker *w, const char *obj, const char *key, int *v) {
  int64_t x = *v;
  GORP_CALL(walk_i64(w, obj, key, &x));
  if (!w->save) *v = (int)x;
  return GORP_OK;
}

static int walk_long(walker *w, const char *obj, const char *key, long *v) {
  int64_t x = *v;
  GORP_CALL(walk_i64(w, obj, key, &x));
  if (!w->save) *v = (long)x;
  return GORP_OK;
}

/* A basis as its logical (cap, r) matrix (this rank's rows of it under TP), with r and each
 * task's end column as attributes. */
static int walk_space(walker *w, const char *name, gorp_space *s, int n_tasks) {
  char obj[256];
  snprintf(obj, sizeof(obj), "/gorp/%s", name);
  int r = s->r;
  GORP_CALL(walk_int(w, obj, "columns", &r));
  if (!w->save && (r < 0 || r > s->cap))
    GORP_ERR(GORP_EINPUT, "%s: %s has %d columns, more than its axis (%d)", w->path, obj, r,
             s->cap);
  for (int t = 0; t < n_tasks; t++) {
    char key[32];
    snprintf(key, sizeof(key), "task_%02d_end", t + 1);
    GORP_CALL(walk_int(w, obj, key, &s->task_end[t]));
  }
  if (w->save)
    for (int i = 0; i < s->len; i++)
      for (int j = 0; j < r; j++) w->scratch[(size_t)i * r + j] = s->S[(size_t)i * s->cap + j];
  char ds[300];
  snprintf(ds, sizeof(ds), "%s/basis", obj);
  const hsize_t dims[2] = {(hsize_t)s->cap, (hsize_t)r};
  const h5io_block b = {.rows = dims[0],
                        .cols = dims[1],
                        .r0 = (uint64_t)s->row_off,
                        .nr = (uint64_t)s->len,
                        .nc = dims[1],
                        .split = s->len != s->cap};
  const h5io_data sd = {ds, H5T_NATIVE_FLOAT, 2, dims, &b, 1};
  if (r > 0) GORP_CALL(walk_data(w, &sd, w->scratch));
  if (!w->save) {
    memset(s->S, 0, (size_t)s->len * s->cap * sizeof(float));
    for (int i = 0; i < s->len; i++)
      for (int j = 0; j < r; j++) s->S[(size_t)i * s->cap + j] = w->scratch[(size_t)i * r + j];
    s->r = r;
  }
  return GORP_OK;
}

/* n zeroed blocks on every rank, or NULL on every rank with *rc set (the collective steps that
 * follow need all of them). */
static h5io_block *walk_blocks(walker *w, size_t n, int *rc) {
  h5io_block *b = calloc(n, sizeof(*b));
  *rc = b ? GORP_OK : GORP_ERROR(GORP_EMEM, "out of memory walking the state of %s", w->path);
  *rc = h5io_agree(w->d, *rc, w->path, "allocating");
  if (*rc) {
    free(b); /* held by the ranks whose allocation worked */
    return NULL;
  }
  return b;
}

/* AdamW's step and moments; s gives the moments' dataset shape and this rank's blocks (its name
 * is replaced by obj/exp_avg and obj/exp_avg_sq). */
static int walk_adamw(walker *w, const char *obj, adamw *o, const h5io_data *s) {
  char name[300];
  h5io_data moment = *s;
  moment.name = name;
  GORP_CALL(walk_long(w, obj, "step", &o->step));
  snprintf(name, sizeof(name), "%s/exp_avg", obj);
  GORP_CALL(walk_data(w, &moment, o->m));
  snprintf(name, sizeof(name), "%s/exp_avg_sq", obj);
  return walk_data(w, &moment, o->v);
}

/* An AdamW over a 1-D dataset of `total` elements made of n blocks (then freed). */
static int walk_adamw_blocks(walker *w, const char *obj, adamw *o, h5io_block *blocks, int n,
                             uint64_t total) {
  const hsize_t dims = total;
  const h5io_data s = {NULL, H5T_NATIVE_FLOAT, 1, &dims, blocks, n};
  const int rc = walk_adamw(w, obj, o, &s);
  free(blocks);
  return rc;
}

/* Factor A (r, in) (which = 0) or Bt (r, out) (which = 1, B transposed) of target tg as a pair
 * block holds it, at element base of a dataset: this rank's columns when the factor is split
 * (A of a row-parallel target, Bt of a column-parallel one). */
static h5io_block lora_factor_block(const lora *lo, int tg, int which, uint64_t base) {
  const int *full = which ? lo->out_full : lo->in_full, *off = which ? lo->out_off : lo->in_off,
            *held = which ? lo->out : lo->in;
  return (h5io_block){.base = base,
                      .rows = (uint64_t)lo->r,
                      .cols = (uint64_t)full[tg],
                      .nr = (uint64_t)lo->r,
                      .c0 = (uint64_t)off[tg],
                      .nc = (uint64_t)held[tg],
                      .split = lora_factor_split(lo, tg, which)};
}

/* Every LoRA pair: A (r, in) and B (out, r) as PEFT stores them. */
static int walk_lora(walker *w, lora *lo) {
  for (int p = 0; p < lo->n_pairs; p++)
    for (int l = 0; l < lo->L; l++)
      for (int tg = 0; tg < LORA_N_TARGETS; tg++) {
        if (!(lo->targets >> tg & 1)) continue;
        float *pair = lo->params + (size_t)p * lo->pair_size;
        const int r = lo->r, out = lo->out[tg];
        char name[256];
        snprintf(name, sizeof(name), "/lora/task_%02d/model.layers.%d.%s/A", p + 1, l,
                 lora_module_names[tg]);
        const hsize_t da[2] = {(hsize_t)r, (hsize_t)lo->in_full[tg]},
                      db[2] = {(hsize_t)lo->out_full[tg], (hsize_t)r};
        h5io_block a, b; /* the layout model.h5's /adapters uses too */
        modelfile_lora_blocks(lo, tg, &a, &b);
        const h5io_data sa = {name, H5T_NATIVE_FLOAT, 2, da, &a, 1},
                        sb = {name, H5T_NATIVE_FLOAT, 2, db, &b, 1};
        GORP_CALL(walk_data(w, &sa, lora_A(lo, pair, l, tg)));
        float *Bt = lora_Bt(lo, pair, l, tg);
        if (w->save)
          for (int i = 0; i < out; i++)
            for (int k = 0; k < r; k++) w->scratch[(size_t)i * r + k] = Bt[(size_t)k * out + i];
        name[strlen(name) - 1] = 'B';
        GORP_CALL(walk_data(w, &sb, w->scratch));
        if (!w->save)
          for (int i = 0; i < out; i++)
            for (int k = 0; k < r; k++) Bt[(size_t)k * out + i] = w->scratch[(size_t)i * r + k];
      }
  return GORP_OK;
}

/* The AdamW moments of the active LoRA pair: the logical pair block flattened (per layer and
 * target, A then Bt), this rank holding its blocks where its pair block holds the factors. */
static int walk_opt_lora(walker *w, trainer *t) {
  const lora *lo = &t->lo;
  int rc;
  h5io_block *blocks = walk_blocks(w, 2 * (size_t)lo->L * LORA_N_TARGETS, &rc);
  if (!blocks) return rc;
  int n = 0;
  uint64_t base = 0;
  for (int l = 0; l < lo->L; l++)
    for (int tg = 0; tg < LORA_N_TARGETS; tg++) {
      if (!(lo->targets >> tg & 1)) continue;
      blocks[n] = lora_factor_block(lo, tg, 0, base);
      blocks[n].mem = (uint64_t)(lora_A(lo, lo->grads, l, tg) - lo->grads);
      base += (uint64_t)lo->r * lo->in_full[tg];
      blocks[n + 1] = lora_factor_block(lo, tg, 1, base);
      blocks[n + 1].mem = (uint64_t)(lora_Bt(lo, lo->grads, l, tg) - lo->grads);
      base += (uint64_t)lo->r * lo->out_full[tg];
      n += 2;
    }
  return walk_adamw_blocks(w, "/optim/lora", &t->opt_lora, blocks, n, base);
}

/* The seqft/mtl AdamW moments: the trainable tensors' logical tensors one after the other, in
 * table order, this rank holding its shards at their gradients' offsets. */
static int walk_opt_all(walker *w, trainer *t) {
  const model *m = t->m;
  int rc;
  h5io_block *blocks = walk_blocks(w, (size_t)m->n_tensors, &rc);
  if (!blocks) return rc;
  int n = 0;
  uint64_t base = 0;
  for (int i = 0; i < m->n_tensors; i++) {
    const param_tensor *pt = &m->tensors[i];
    if (!pt->trainable) continue;
    blocks[n] = modelfile_block(pt, base);
    blocks[n++].mem = pt->grad_offset;
    base += (uint64_t)(pt->full[0] * pt->full[1]);
  }
  return walk_adamw_blocks(w, "/optim/all", &t->opt_all, blocks, n, base);
}

static int walk_full(walker *w, trainer *t, full_target *f) {
  const char *tname = t->m->tensors[f->tensor].name;
  char obj[256], name[300];
  snprintf(obj, sizeof(obj), "/optim/full/%s", tname);
  if (f->low.proj) {
    /* logical shapes; under TP (optim_lowrank.h) Q is whole, P holds the weight's rows when
     * they are split, the moments the weight's rows (Q on the right) or columns (P on the left)
     * when that axis is split */
    lowrank_adam *o = &f->low;
    const dist_matrix *wd = &f->dm;
    const int rows_split = o->m != wd->m, cols_split = o->n != wd->n;
    const hsize_t dp[2] = {(hsize_t)(o->right ? o->k : wd->m), (hsize_t)(o->right ? wd->n : o->k)};
    const hsize_t dr[2] = {(hsize_t)(o->right ? wd->m : o->k), (hsize_t)(o->right ? o->k : wd->n)};
    const h5io_block bp = {.rows = dp[0],
                           .cols = dp[1],
                           .r0 = o->right ? 0 : (uint64_t)(rows_split ? wd->local_off : 0),
                           .nr = o->right ? dp[0] : (uint64_t)o->m,
                           .nc = dp[1],
                           .split = !o->right && rows_split};
    const h5io_block br = {.rows = dr[0],
                           .cols = dr[1],
                           .r0 = o->right && rows_split ? (uint64_t)wd->local_off : 0,
                           .nr = o->right ? (uint64_t)o->m : dr[0],
                           .c0 = !o->right && cols_split ? (uint64_t)wd->local_off : 0,
                           .nc = o->right ? dr[1] : (uint64_t)o->n,
                           .split = o->right ? rows_split : cols_split};
    int64_t counter = (int64_t)o->opts.counter;
    GORP_CALL(walk_long(w, obj, "step", &o->step));
    GORP_CALL(walk_i64(w, obj, "svd_counter", &counter));
    o->opts.counter = (uint64_t)counter;
    snprintf(name, sizeof(name), "%s/projection", obj);
    const h5io_data sp = {name, H5T_NATIVE_FLOAT, 2, dp, &bp, 1},
                    sr = {name, H5T_NATIVE_FLOAT, 2, dr, &br, 1};
    GORP_CALL(walk_data(w, &sp, o->proj));
    snprintf(name, sizeof(name), "%s/exp_avg", obj);
    GORP_CALL(walk_data(w, &sr, o->mom));
    snprintf(name, sizeof(name), "%s/exp_avg_sq", obj);
    GORP_CALL(walk_data(w, &sr, o->var));
  } else if (f->plain.m) { /* moments of the weight's shape, held like the weight */
    const param_tensor *pt = &t->m->tensors[f->tensor];
    const hsize_t d[2] = {(hsize_t)pt->full[0], (hsize_t)pt->full[1]};
    const h5io_block b = modelfile_block(pt, 0);
    const h5io_data s = {NULL, H5T_NATIVE_FLOAT, 2, d, &b, 1};
    GORP_CALL(walk_adamw(w, obj, &f->plain, &s));
  }
  if (f->space.S) GORP_CALL(walk_space(w, tname, &f->space, t->n_tasks));
  return GORP_OK;
}

/* The whole training state but /model's attributes and /config (written separately). */
static int walk_state(walker *w, trainer *t, cl_results *res, ckpt_pos *p, int optim) {
  model *m = t->m;
  if (!w->save) GORP_CALL(modelfile_read_tensors(w->file, m, w->d, w->path));
  if (t->has_lora) GORP_CALL(walk_lora(w, &t->lo));
  const hsize_t dm[2] = {(hsize_t)res->T + 1, (hsize_t)res->T};
  GORP_CALL(walk_whole(w, "/results/acc_matrix", H5T_NATIVE_DOUBLE, 2, dm, res->acc));
  GORP_CALL(walk_whole(w, "/results/in_list", H5T_NATIVE_DOUBLE, 2, dm, res->in_list));
  if (t->lora_space)
    for (int l = 0; l < t->lo.L; l++)
      for (int tg = 0; tg < LORA_N_TARGETS; tg++) {
        if (!(t->lo.targets >> tg & 1)) continue;
        char name[128];
        snprintf(name, sizeof(name), "model.layers.%d.%s.lora_A", l, lora_module_names[tg]);
        GORP_CALL(walk_space(w, name, &t->lora_space[l * LORA_N_TARGETS + tg], t->n_tasks));
      }
  for (int i = 0; i < t->n_full; i++) GORP_CALL(walk_full(w, t, &t->full[i]));
  if (!optim) return GORP_OK; /* at a task boundary the next task starts fresh moments */
  if (t->has_seqft) GORP_CALL(walk_opt_all(w, t));
  if (t->has_lora) GORP_CALL(walk_opt_lora(w, t));
  if (p->step > 0) {
    const hsize_t d = (hsize_t)p->step;
    GORP_CALL(walk_floats(w, "/optim/losses", 1, &d, p->losses));
  }
  return GORP_OK;
}

static size_t scratch_floats(const trainer *t) {
  const model_config *c = &t->m->cfg;
  size_t big = (size_t)c->intermediate_size, wide = (size_t)c->hidden_size;
  if ((size_t)c->num_heads * c->head_dim > wide) wide = (size_t)c->num_heads * c->head_dim;
  if (wide > big) big = wide;
  return big * big; /* the largest basis (len x len) and every B (out x r) */
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
  if (d && d->size > 1) GORP_MPI(MPI_Bcast(v, n, MPI_LONG, 0, MPI_COMM_WORLD));
  return GORP_OK;
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

/* Writes the checkpoint into tmp (every rank of t->dist its blocks) and publishes it as path. */
static int write_file(const char *tmp, const char *path, const gorp_config *c, trainer *t,
                      cl_results *res, ckpt_pos *p, long seq) {
  const dist *d = t->dist;
  hid_t f;
  GORP_CALL(h5io_create_par(tmp, d, &f));
  walker w = {.save = 1, .file = f, .path = tmp, .d = d};
  char *text = NULL;
  int rc = config_to_text(c, &text);
  w.scratch = malloc(scratch_floats(t) * sizeof(float));
  if (!rc && !w.scratch) rc = GORP_ERROR(GORP_EMEM, "out of memory saving %s", tmp);
  /* what can fail on one rank alone comes first: every metadata change is made by all or none */
  rc = h5io_agree(d, rc, tmp, "preparing the checkpoint");
  if (!rc)
    rc = h5io_agree(d, modelfile_write_header(f, "checkpoint", tmp), tmp, "writing the header");
  if (!rc) rc = modelfile_write_group(f, t->m, NULL, d, tmp);
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
  int64_t pos[7] = {p->task, p->step, p->done, t->has_lora ? t->lo.n_pairs : 0, seq, th[0], th[1]};
  const char *keys[7] = {"task",     "step",           "task_done",       "lora_pairs",
                         "sequence", "threads_openmp", "threads_openblas"};
  for (int i = 0; i < 7 && !rc; i++) rc = walk_i64(&w, "/", keys[i], &pos[i]);
  if (!rc) rc = walk_state(&w, t, res, p, !p->done);
  free(text);
  free(w.scratch);
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

int ckpt_save(const gorp_config *c, const trainer *t, const cl_results *res, const ckpt_pos *p) {
  const dist *d = t->dist;
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
  rc = write_file(tmp, path, c, (trainer *)t, (cl_results *)res, (ckpt_pos *)p, next);
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
  if (d && d->size > 1)
    GORP_MPI(MPI_Allreduce(MPI_IN_PLACE, range, 4, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
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

/* Reads checkpoint path into t, res and p: the one path by which a resume and gorp inspect
 * --verify accept a checkpoint. c is the resuming run's config, compared with the stored one
 * (NULL: t was built from the stored one; nothing to compare). */
static int load_file(const char *path, const gorp_config *c, int force, trainer *t, cl_results *res,
                     ckpt_pos *p) {
  const dist *d = t->dist;
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
  rc = h5io_agree(d, rc, path, "checking the header and config");
  int64_t pos[4] = {0};
  const char *keys[4] = {"task", "step", "task_done", "lora_pairs"};
  for (int i = 0; i < 4 && !rc; i++) rc = walk_i64(&w, "/", keys[i], &pos[i]);
  p->losses = NULL;
  if (!rc) {
    p->task = (int)pos[0];
    p->step = (int)pos[1];
    p->done = (int)pos[2];
    struct stat st; /* the losses (step floats) are in the file: a bound before allocating */
    if (stat(path, &st) || pos[1] < 0 || (uint64_t)pos[1] > (uint64_t)st.st_size / sizeof(float) ||
        pos[0] != p->task || pos[3] != (int)pos[3] || (pos[2] != 0 && pos[2] != 1))
      rc = GORP_ERROR(GORP_EINPUT,
                      "%s: position attributes task %" PRId64 ", step %" PRId64
                      ", task_done %" PRId64 ", lora_pairs %" PRId64 " are out of range",
                      path, pos[0], pos[1], pos[2], pos[3]);
    if (!rc) rc = trainer_resume_at(t, p->task, !p->done, (int)pos[3]);
    if (!rc && p->step > 0 && !(p->losses = malloc((size_t)p->step * sizeof(float))))
      rc = GORP_ERROR(GORP_EMEM, "out of memory reading %s", path);
    if (!rc && !(w.scratch = malloc(scratch_floats(t) * sizeof(float))))
      rc = GORP_ERROR(GORP_EMEM, "out of memory reading %s", path);
    rc = h5io_agree(d, rc, path, "preparing the trainer");
  }
  if (!rc) rc = walk_state(&w, t, res, p, !p->done);
  if (!rc && c) rc = check_threads(f, path, d); /* a resume, not inspect --verify */
  free(w.scratch);
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
  GORP_MPI(MPI_Bcast(name, (int)size, MPI_CHAR, 0, MPI_COMM_WORLD));
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

int ckpt_load(const gorp_config *c, int force_config, trainer *t, cl_results *res, ckpt_pos *p) {
  char dir[4096], path[4200], name[256];
  ckpt_dir(c, dir, sizeof(dir));
  long *seq;
  int n;
  GORP_CALL(read_listing(dir, t->dist, name, sizeof(name), &seq, &n));
  /* LATEST's file first, then the others newest first */
  int rc = GORP_EINPUT;
  if (name[0]) {
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path)) {
      free(seq);
      GORP_ERR(GORP_EINPUT, "%s/LATEST names '%s': the path is longer than %zu bytes", dir, name,
               sizeof(path) - 1);
    }
    rc = load_file(path, c, force_config, t, res, p);
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
    rc = load_file(path, c, force_config, t, res, p);
    if (rc == GORP_OK) out_printf("resuming from %s (an earlier checkpoint than LATEST's)\n", path);
  }
  free(seq);
  if (rc) GORP_ERR(rc, "no usable checkpoint in %s (see the messages above)", dir);
  return GORP_OK;
}

/* ---- gorp inspect ---- */

typedef struct inspect_ctx {
  const char *path;
  int verify;
  hsize_t file_size;
  int n_datasets, n_verified, n_bad;
  size_t floats;
} inspect_ctx;

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

/* Every dataset: counted, and with --verify read back and checked against its crc32. */
static herr_t inspect_visit(hid_t loc, const char *name, const H5O_info_t *info, void *op) {
  inspect_ctx *x = op;
  if (info->type != H5O_TYPE_DATASET) return 0;
  x->n_datasets++;
  int ndim;
  hsize_t dims[H5S_MAX_RANK];
  size_t n, esize;
  int rc = dataset_shape(loc, name, x->file_size, x->path, &ndim, dims, &n, &esize);
  if (!rc) x->floats += n;
  if (!rc && x->verify) {
    void *buf = malloc((n ? n : 1) * esize);
    rc = !buf         ? GORP_EMEM
         : esize == 8 ? h5io_read_doubles(loc, name, ndim, dims, buf, x->path)
                      : h5io_read_floats(loc, name, ndim, dims, buf, x->path);
    free(buf);
  }
  rc ? x->n_bad++ : x->n_verified++;
  return 0;
}

/* A checkpoint's stored config text as a config: loaded from a temporary file like any INI
 * file; data.order and data.substitute were already applied to the stored data.tasks. */
static int config_from_text(const char *text, const char *path, gorp_config *c) {
  const char *dir = getenv("TMPDIR");
  char tmp[4200];
  snprintf(tmp, sizeof(tmp), "%s/gorp_config_XXXXXX", dir && dir[0] ? dir : "/tmp");
  const int fd = mkstemp(tmp);
  if (fd < 0) GORP_ERR(GORP_EIO, "cannot create a temporary file %s: %s", tmp, strerror(errno));
  const size_t len = strlen(text);
  const int bad = write(fd, text, len) != (ssize_t)len;
  close(fd);
  char *applied[] = {"data.order=", "data.substitute="};
  int rc = bad ? GORP_ERROR(GORP_EIO, "cannot write %s", tmp) : config_load(c, tmp, applied, 2);
  unlink(tmp);
  if (rc) GORP_ERR(rc, "%s: its /config text is not a valid config (see above)", path);
  return GORP_OK;
}

/* Checks model file path by the code every --model option and model.init run. */
static int verify_model(const char *path) {
  model m;
  GORP_CALL(modelfile_load(&m, path));
  model_free(&m);
  return GORP_OK;
}

/* Checks checkpoint path by the code a resume runs (load_file), on a model and trainer built
 * from the config and architecture stored in it. */
static int verify_checkpoint(hid_t f, const char *path) {
  hid_t g = H5Lexists(f, "config", H5P_DEFAULT) > 0 ? H5Gopen2(f, "config", H5P_DEFAULT) : -1;
  if (g < 0) GORP_ERR(GORP_EINPUT, "%s has no /config group (damaged file?)", path);
  char *text = NULL;
  int rc = h5io_read_str_attr(g, "/config", "text", &text, path);
  H5Gclose(g);
  gorp_config c = {0};
  if (!rc) rc = config_from_text(text, path, &c);
  free(text);
  model_config mc;
  model m = {0};
  if (!rc) rc = modelfile_read_config(path, &mc);
  if (!rc) rc = model_create(&m, &mc);
  trainer t = {0};
  int made = 0;
  if (!rc) made = !(rc = trainer_create(&t, &m, &c, c.data.n_tasks));
  cl_results res = {.T = c.data.n_tasks};
  ckpt_pos p = {0};
  if (!rc && (!(res.acc = calloc((size_t)(res.T + 1) * res.T, sizeof(double))) ||
              !(res.in_list = calloc((size_t)(res.T + 1) * res.T, sizeof(double)))))
    rc = GORP_ERROR(GORP_EMEM, "out of memory verifying %s", path);
  if (!rc) rc = load_file(path, NULL, 0, &t, &res, &p);
  free(p.losses);
  free(res.acc);
  free(res.in_list);
  if (made) trainer_free(&t);
  model_free(&m);
  config_free(&c);
  return rc;
}

static void print_bases(hid_t f) {
  if (H5Lexists(f, "gorp", H5P_DEFAULT) <= 0) return;
  hid_t g = H5Gopen2(f, "gorp", H5P_DEFAULT);
  H5G_info_t gi = {0};
  if (g < 0 || H5Gget_info(g, &gi) < 0) {
    if (g >= 0) H5Gclose(g);
    return;
  }
  printf("GORP bases (%llu matrices): columns in use / axis length, per task end column\n",
         (unsigned long long)gi.nlinks);
  for (hsize_t i = 0; i < gi.nlinks; i++) {
    char name[256];
    H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof(name), H5P_DEFAULT);
    hid_t o = H5Gopen2(g, name, H5P_DEFAULT);
    int64_t cols = 0;
    h5io_read_num_attr(o, name, "columns", 0, H5T_NATIVE_INT64, &cols, "");
    long long len = -1;
    if (H5Lexists(o, "basis", H5P_DEFAULT) > 0) {
      hid_t d = H5Dopen2(o, "basis", H5P_DEFAULT), sp = H5Dget_space(d);
      hsize_t dims[2] = {0};
      if (H5Sget_simple_extent_ndims(sp) == 2 && H5Sget_simple_extent_dims(sp, dims, NULL) == 2)
        len = (long long)dims[0];
      H5Sclose(sp);
      H5Dclose(d);
    }
    printf("  %-48s %4lld", name, (long long)cols);
    if (len >= 0) printf(" / %lld", len);
    printf("  ends:");
    for (int t = 1; t < 100; t++) {
      char key[32];
      snprintf(key, sizeof(key), "task_%02d_end", t);
      if (H5Aexists(o, key) <= 0) break;
      int64_t e = 0;
      h5io_read_num_attr(o, name, key, 0, H5T_NATIVE_INT64, &e, "");
      printf(" %lld", (long long)e);
    }
    printf("\n");
    H5Gclose(o);
  }
  H5Gclose(g);
}

static void print_matrix(hid_t f, hsize_t file_size, const char *path) {
  if (H5Lexists(f, "results", H5P_DEFAULT) <= 0) return;
  int ndim;
  hsize_t dims[H5S_MAX_RANK];
  size_t n, esize;
  if (dataset_shape(f, "results/acc_matrix", file_size, path, &ndim, dims, &n, &esize) || ndim != 2)
    return;
  double *a = malloc((n ? n : 1) * sizeof(double));
  if (a && !h5io_read_doubles(f, "results/acc_matrix", 2, dims, a, path)) {
    printf("accuracy matrix (row 0 zero-shot, row j after task j; - = not measured)\n");
    for (hsize_t r = 0; r < dims[0]; r++) {
      printf("  after %-2llu", (unsigned long long)r);
      for (hsize_t c = 0; c < dims[1]; c++)
        if (a[r * dims[1] + c] != a[r * dims[1] + c])
          printf(" %6s", "-");
        else
          printf(" %6.1f", a[r * dims[1] + c]);
      printf("\n");
    }
  }
  free(a);
}

int ckpt_inspect(const char *path, int verify) {
  hid_t f;
  GORP_CALL(h5io_open_read(path, "file", &f));
  int rc = modelfile_check_header(f, path);
  char *kind = NULL;
  if (!rc) rc = h5io_read_str_attr(f, "the root group", "gorp_file_kind", &kind, path);
  model_config mc;
  if (!rc) rc = modelfile_read_config(path, &mc);
  if (rc) {
    H5Fclose(f);
    free(kind);
    return rc;
  }
  printf("%s: gorp %s file, format version %d\n", path, kind, MODELFILE_FORMAT_VERSION);
  printf("model: %d layers, hidden %d, intermediate %d, heads %d/%d (head dim %d), vocab %d, "
         "%s head\n",
         mc.num_layers, mc.hidden_size, mc.intermediate_size, mc.num_heads, mc.num_kv_heads,
         mc.head_dim, mc.vocab_size, mc.tie_embeddings ? "tied" : "untied");
  rc = strcmp(kind, "model") ? GORP_OK : modelfile_print_adapters(f, path);
  if (rc) {
    H5Fclose(f);
    free(kind);
    return rc;
  }
  if (!strcmp(kind, "checkpoint")) {
    char *method = NULL, *text = NULL;
    int64_t v[4] = {0};
    const char *keys[4] = {"task", "step", "task_done", "lora_pairs"};
    for (int i = 0; i < 4; i++)
      h5io_read_num_attr(f, "/", keys[i], 0, H5T_NATIVE_INT64, &v[i], path);
    h5io_read_str_attr(f, "/", "method", &method, path);
    hid_t g = H5Gopen2(f, "config", H5P_DEFAULT);
    uint64_t hash[2] = {0, 0};
    if (g >= 0) {
      h5io_read_str_attr(g, "/config", "text", &text, path);
      h5io_read_num_attr(g, "/config", "hash", 0, H5T_NATIVE_UINT64, &hash[0], path);
      if (H5Aexists(g, "run_hash") > 0) /* older checkpoints lack it and the thread counts */
        h5io_read_num_attr(g, "/config", "run_hash", 0, H5T_NATIVE_UINT64, &hash[1], path);
      H5Gclose(g);
    }
    int64_t threads[2] = {0, 0};
    const char *tkeys[2] = {"threads_openmp", "threads_openblas"};
    for (int i = 0; i < 2; i++)
      if (H5Aexists(f, tkeys[i]) > 0)
        h5io_read_num_attr(f, "/", tkeys[i], 0, H5T_NATIVE_INT64, &threads[i], path);
    printf("method %s; ", method ? method : "?");
    if (v[2])
      printf("tasks done: %lld\n", (long long)v[0] + 1);
    else
      printf("in task %lld, %lld steps taken\n", (long long)v[0] + 1, (long long)v[1]);
    printf("LoRA pairs: %lld; config hash %016llx, run hash %016llx\n", (long long)v[3],
           (unsigned long long)hash[0], (unsigned long long)hash[1]);
    if (threads[0])
      printf("written with %lld OpenMP / %lld OpenBLAS threads per rank\n", (long long)threads[0],
             (long long)threads[1]);
    if (text) printf("--- config ---\n%s--------------\n", text);
    free(method);
    free(text);
    hsize_t size = 0;
    print_bases(f);
    if (H5Fget_filesize(f, &size) >= 0) print_matrix(f, size, path);
  }
  inspect_ctx x = {.path = path, .verify = verify};
  rc = H5Fget_filesize(f, &x.file_size) < 0 ||
               H5Ovisit(f, H5_INDEX_NAME, H5_ITER_INC, inspect_visit, &x) < 0
           ? GORP_ERROR(GORP_EINPUT, "%s: cannot list its objects (damaged file?)", path)
           : GORP_OK;
  const int is_checkpoint = !strcmp(kind, "checkpoint");
  free(kind);
  if (!rc) {
    printf("%d datasets, %zu values", x.n_datasets, x.floats);
    if (verify)
      printf("; verified %d, damaged %d\n", x.n_verified, x.n_bad);
    else
      printf(" (--verify checks every checksum)\n");
  }
  if (!rc && x.n_bad)
    rc = GORP_ERROR(GORP_EINPUT, "%s: %d damaged dataset(s) (named above)", path, x.n_bad);
  /* then what a resume (or a --model option) reads, by the same code */
  if (!rc && verify) rc = is_checkpoint ? verify_checkpoint(f, path) : verify_model(path);
  H5Fclose(f);
  GORP_CALL(rc);
  if (verify) printf("%s: %s\n", path, is_checkpoint ? "a resume accepts it" : "loads as a model");
  return GORP_OK;
}
