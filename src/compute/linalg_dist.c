/* Top-k SVD of a matrix sharded over an MPI communicator (see linalg_dist.h): ScaLAPACK psgesvd
 * on a 1-D BLACS grid, or the randomized SVD of linalg.c on the shards (GEMMs on the local
 * shard, sums and small QRs on rank 0, TSQR for the split axis). Every rank takes the same
 * branches and reaches the same collectives; a failure on one rank is made a failure on all.
 * Not for: local matrices (linalg.c), choosing the method or the shards (the trainer). */
#include "gorp/linalg_dist.h"

#include "linalg_lapack.h"
#include "gorp/backend.h"
#include "gorp/err.h"
#include "gorp/rng.h"

#include <lapacke.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* BLACS and ScaLAPACK (Debian ships no C header): Fortran convention, every argument by
 * pointer, column-major, 1-based ia/ja. The trailing size_t are gfortran's hidden lengths of
 * the CHARACTER arguments, passed explicitly so that no callee reads a missing argument. */
int Csys2blacs_handle(MPI_Comm comm);
void Cfree_blacs_system_handle(int handle);
void Cblacs_gridinit(int *ctxt, char *order, int nprow, int npcol);
void Cblacs_gridinfo(int ctxt, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int ctxt);
void Cblacs_exit(int keep_mpi);
int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc, const int *nprocs);
void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb,
               const int *irsrc, const int *icsrc, const int *ictxt, const int *lld, int *info);
void psgesvd_(const char *jobu, const char *jobvt, const int *m, const int *n, float *a,
              const int *ia, const int *ja, const int *desca, float *s, float *u, const int *iu,
              const int *ju, const int *descu, float *vt, const int *ivt, const int *jvt,
              const int *descvt, float *work, const int *lwork, int *info, size_t len_jobu,
              size_t len_jobvt);

enum { ROOT = 0 };    /* the rank that sums, factors and broadcasts */
enum { NB_MAX = 64 }; /* block size of the block-cyclic layout (square: MB = NB) */

/* One rank's entry in the per-call table of arguments (ws->ints), then 4 count arrays. */
enum {
  T_STATUS,
  T_M,
  T_N,
  T_LAYOUT,
  T_OFF,
  T_LEN,
  T_K,
  T_KIND,
  T_WANT,
  T_OVER,
  T_POWER,
  T_SEED_LO,
  T_SEED_HI,
  T_CTR_LO,
  T_CTR_HI,
  T_WIDTH = 16 /* ints per rank; 4 more per rank hold the v-collective counts */
};
enum { INTS_PER_RANK = T_WIDTH + 4 };

void dist_split(int total, int p, int r, int *off, int *len) {
  const long long lo = (long long)r * total / p, hi = (long long)(r + 1) * total / p;
  *off = (int)lo;
  *len = (int)(hi - lo);
}

int dist_matrix_init(dist_matrix *d, MPI_Comm comm, int m, int n, dist_layout layout) {
  int rank = 0, p = 1;
  GORP_MPI(MPI_Comm_rank(comm, &rank));
  GORP_MPI(MPI_Comm_size(comm, &p));
  if (layout != DIST_ROWS && layout != DIST_COLS)
    GORP_ERR(GORP_EINPUT, "dist_matrix_init: unknown layout %d", (int)layout);
  if (m < 1 || n < 1)
    GORP_ERR(GORP_EINPUT, "dist_matrix_init: matrix shape (%d x %d) must be positive", m, n);
  d->comm = comm;
  d->m = m;
  d->n = n;
  d->layout = layout;
  dist_split(layout == DIST_ROWS ? m : n, p, rank, &d->local_off, &d->local_len);
  return GORP_OK;
}

/* ---- block-cyclic index arithmetic (one dimension, np processes, first block on 0) ---- */

static int bc_local(int g, int nb, int np) {
  return (g / (nb * np)) * nb + g % nb;
}
static int bc_global(int l, int nb, int me, int np) {
  return ((l / nb) * np + me) * nb + l % nb;
}
/* The next piece [*a, *b) of [*cursor, hi) that lies in one block owned by process who. */
static int next_seg(int *cursor, int hi, int nb, int np, int who, int *a, int *b) {
  while (*cursor < hi) {
    const int blk = *cursor / nb, start = *cursor, end = imin(hi, (blk + 1) * nb);
    *cursor = end;
    if (blk % np == who) {
      *a = start;
      *b = end;
      return 1;
    }
  }
  return 0;
}
/* How many of the indices [lo, hi) process who owns. */
static int owned(int lo, int hi, int nb, int np, int who) {
  int cursor = lo, a, b, count = 0;
  while (next_seg(&cursor, hi, nb, np, who, &a, &b)) count += b - a;
  return count;
}

/* ---- LAPACK helpers (the same calls as linalg.c, so that p = 1 reproduces it bit for bit) ---- */

/* Optimal lwork of sgeqrf on rows x cols and sorgqr forming rows x q from q reflectors. */
static int query_qr(size_t *lwork, int rows, int cols, int q) {
  float q1 = 0.0f, q2 = 0.0f, dummy = 0.0f;
  lapack_int i1 =
      LAPACKE_sgeqrf_work(LAPACK_COL_MAJOR, rows, cols, &dummy, imax(1, rows), &dummy, &q1, -1);
  lapack_int i2 =
      LAPACKE_sorgqr_work(LAPACK_COL_MAJOR, rows, q, q, &dummy, imax(1, rows), &dummy, &q2, -1);
  if (i1 || i2)
    GORP_ERR(GORP_ELIB, "sgeqrf/sorgqr workspace query (%d x %d) failed: info %d/%d", rows, cols,
             (int)i1, (int)i2);
  *lwork = zmax(linalg_lwork_from(q1), linalg_lwork_from(q2));
  return GORP_OK;
}

/* Row-major C (rows x cols) = op(A) op(B) through the backend. An empty C is left alone and an
 * empty inner dimension gives C = 0 (BLAS refuses the leading dimension 0 of an empty shard). */
static int gemm_z(int ta, int tb, int rows, int cols, int inner, const float *a, int lda,
                  const float *b, int ldb, float *c, int ldc) {
  if (rows == 0 || cols == 0) return GORP_OK;
  if (inner == 0) {
    for (int i = 0; i < rows; i++) memset(c + (size_t)i * ldc, 0, (size_t)cols * sizeof(float));
    return GORP_OK;
  }
  return backend_get()->gemm(ta, tb, rows, cols, inner, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
}

/* ---- the plan of one call: shapes and the carving of the workspace, computed once ---- */

typedef struct plan {
  int want;
  svd_kind kind;
  dist_layout layout;
  int p, rank;
  int m, n, k;
  int L, O;     /* length of the split axis and of the other one */
  int off, len; /* this rank's range of the split axis */
  /* randomized */
  int l;    /* sketch width */
  int r;    /* rows of this rank's R factor in TSQR: min(len, l) */
  int smax; /* bound on the stacked R rows on the root: min(L, p l) */
  size_t tsqr_floats;
  /* exact */
  int q, in_grid; /* grid size min(p, m, n); this rank is one of its first q ranks */
  int ctxt, nprow, npcol, myrow, mycol, nb, size;
  int mp, nq, lld;  /* A = G^T (n x m), local mp x nq */
  int mv, nv, lldv; /* U (n x size) or VT (size x m), local mv x nv */
  size_t fixed;     /* floats before the LAPACK/ScaLAPACK work array */
  size_t min_lwork; /* randomized: the least LAPACK work accepted */
} plan;

static size_t tsqr_size(const plan *pl) {
  if (pl->p == 1) return 0;
  size_t s = (size_t)pl->r * pl->l + (size_t)pl->l * pl->len;
  if (pl->rank == ROOT) s += 2 * (size_t)pl->smax * pl->l;
  return s;
}

static int numroc(int n, int nb, int me, int np) {
  const int zero = 0;
  return numroc_(&n, &nb, &me, &zero, &np);
}

static void plan_fill(plan *pl, const dist_matrix *d, int k, svd_kind kind, int want,
                      const svd_opts *o, const linalg_dist_ws *w) {
  memset(pl, 0, sizeof *pl);
  pl->want = want;
  pl->kind = kind;
  pl->layout = d->layout;
  pl->p = w->size;
  pl->rank = w->rank;
  pl->m = d->m;
  pl->n = d->n;
  pl->k = k;
  pl->L = d->layout == DIST_ROWS ? d->m : d->n;
  pl->O = d->layout == DIST_ROWS ? d->n : d->m;
  pl->off = d->local_off;
  pl->len = d->local_len;
  const int m = pl->m, n = pl->n, mn = imin(m, n), p = pl->p;
  if (kind == SVD_RANDOMIZED) {
    const long l = (long)k + o->oversample;
    pl->l = (int)(l < mn ? l : mn);
    pl->r = imin(pl->len, pl->l);
    pl->smax = (int)((long)pl->l * p < pl->L ? (long)pl->l * p : pl->L);
    pl->tsqr_floats = tsqr_size(pl);
    const size_t l_ = (size_t)pl->l, len = (size_t)pl->len;
    size_t f = 2 * l_ + 2 * (size_t)k + pl->tsqr_floats; /* s, tau, sign pairs, TSQR */
    if (d->layout == DIST_ROWS) {
      f += l_ * n + l_ * len; /* X (l, n) replicated, Y (l, len) split */
    } else {
      f += l_ * m + l_ * len;                         /* Y (l, m) replicated, X (l, len) split */
      if (p > 1 && pl->rank == ROOT) f += 2 * l_ * n; /* gathered B, then reordered */
    }
    pl->fixed = f;
    pl->min_lwork = linalg_min_gesvd(n, pl->l); /* >= l, the QR steps' minimum */
    return;
  }
  pl->q = imin(p, mn);
  pl->in_grid = pl->rank < pl->q;
  pl->ctxt = w->grids[2 * pl->q + (d->layout == DIST_COLS)];
  if (d->layout == DIST_ROWS) { /* the columns of A = G^T are split: a 1 x q grid */
    pl->nprow = 1;
    pl->npcol = pl->q;
    pl->mycol = pl->rank;
  } else { /* the rows of A are split: a q x 1 grid */
    pl->nprow = pl->q;
    pl->npcol = 1;
    pl->myrow = pl->rank;
  }
  pl->nb = imax(1, imin(NB_MAX, (pl->L + pl->q - 1) / pl->q));
  pl->size = mn;
  if (pl->in_grid) {
    pl->mp = numroc(n, pl->nb, pl->myrow, pl->nprow);
    pl->nq = numroc(m, pl->nb, pl->mycol, pl->npcol);
    if (want == WANT_RIGHT) {
      pl->mv = pl->mp;
      pl->nv = numroc(mn, pl->nb, pl->mycol, pl->npcol);
    } else {
      pl->mv = numroc(mn, pl->nb, pl->myrow, pl->nprow);
      pl->nv = pl->nq;
    }
  }
  pl->lld = imax(1, pl->mp);
  pl->lldv = imax(1, pl->mv);
  const size_t a = zmax(1, (size_t)pl->lld * pl->nq), v = zmax(1, (size_t)pl->lldv * pl->nv);
  size_t f = a + v + (size_t)mn + (size_t)pl->len * pl->O + a;         /* A, U|VT, s, send, recv */
  if (want == WANT_LEFT && d->layout == DIST_ROWS) f += (size_t)m * k; /* whole P */
  pl->fixed = f;
  pl->min_lwork = 1;
}

/* ---- collective checks ---- */

static int check_opts(const svd_opts *o, const char *fn) {
  if (o->oversample < 0 || o->power_iters < 0)
    GORP_ERR(GORP_EINPUT, "%s: oversample = %d and power_iters = %d must be >= 0", fn,
             o->oversample, o->power_iters);
  return GORP_OK;
}

/* Everything this rank can check alone; fills pl. G may be NULL (reserve: no data). */
static int local_check(plan *pl, const float *G, const dist_matrix *d, int k, svd_kind kind,
                       const svd_opts *o, int want, int check_ws, const linalg_dist_ws *w,
                       const char *fn) {
  memset(pl, 0, sizeof *pl);
  if (d->comm != w->comm)
    GORP_ERR(GORP_EINPUT,
             "%s: the matrix lives on another communicator than the workspace was made for", fn);
  if (d->layout != DIST_ROWS && d->layout != DIST_COLS)
    GORP_ERR(GORP_EINPUT, "%s: unknown layout %d", fn, (int)d->layout);
  const int m = d->m, n = d->n;
  if (m < 1 || n < 1 || m >= (1 << 30) || n >= (1 << 30))
    GORP_ERR(GORP_EINPUT, "%s: matrix shape (%d x %d) must be positive and below 2^30", fn, m, n);
  if (k < 1 || k > imin(m, n))
    GORP_ERR(GORP_EINPUT,
             "%s: k = %d singular vectors asked of a (%d x %d) matrix (need 1 <= k <= %d)", fn, k,
             m, n, imin(m, n));
  if (kind != SVD_EXACT && kind != SVD_RANDOMIZED)
    GORP_ERR(GORP_EINPUT, "%s: unknown SVD kind %d", fn, (int)kind);
  if (kind == SVD_RANDOMIZED) GORP_CALL(check_opts(o, fn));
  const int L = d->layout == DIST_ROWS ? m : n, O = d->layout == DIST_ROWS ? n : m;
  if (d->local_off < 0 || d->local_len < 0 || d->local_off > L - d->local_len)
    GORP_ERR(GORP_EINPUT, "%s: local range [%d, %d) lies outside the %d %s of the (%d x %d) matrix",
             fn, d->local_off, d->local_off + d->local_len, L,
             d->layout == DIST_ROWS ? "rows" : "columns", m, n);
  const size_t width = (size_t)k + (kind == SVD_RANDOMIZED ? (size_t)o->oversample : 0);
  if ((size_t)L * O / (size_t)w->size > (size_t)INT_MAX / 2 ||
      (size_t)d->local_len * O > (size_t)INT_MAX || width * (size_t)imax(m, n) > (size_t)INT_MAX)
    GORP_ERR(GORP_EINPUT, "%s: the (%d x %d) matrix is too large for one MPI message per rank", fn,
             m, n);
  plan_fill(pl, d, k, kind, want, o, w);
  if (G) {
    const size_t cnt = (size_t)d->local_len * O;
    for (size_t i = 0; i < cnt; i++)
      if (!isfinite(G[i])) {
        const size_t a = i / (size_t)(d->layout == DIST_ROWS ? n : d->local_len);
        const size_t b = i % (size_t)(d->layout == DIST_ROWS ? n : d->local_len);
        GORP_ERR(GORP_ENUM, "%s: non-finite entry %g at (%zu, %zu) of the (%d x %d) matrix", fn,
                 (double)G[i], d->layout == DIST_ROWS ? a + d->local_off : a,
                 d->layout == DIST_ROWS ? b : b + d->local_off, m, n);
      }
  }
  if (check_ws && pl->fixed + pl->min_lwork > w->work_cap)
    GORP_ERR(GORP_EINPUT,
             "%s on a (%d x %d) matrix (this rank's %s [%d, %d)) with k = %d needs %zu floats of "
             "workspace but %zu are reserved: call linalg_dist_ws_reserve with this matrix first",
             fn, m, n, d->layout == DIST_ROWS ? "rows" : "columns", d->local_off,
             d->local_off + d->local_len, k, pl->fixed + pl->min_lwork, w->work_cap);
  return GORP_OK;
}

/* Makes a failure on any rank a failure on all. rc: this rank's code (message printed). */
static int all_ok(int rc, const linalg_dist_ws *w, const char *fn) {
  int worst = rc;
  if (w->size > 1) GORP_MPI(MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, w->comm));
  if (rc) return rc;
  if (worst) GORP_ERR(worst, "%s: stopped because another rank failed (see its message)", fn);
  return GORP_OK;
}

/* Gathers every rank's arguments and checks that the collective ones agree and that the ranges
 * tile the split axis. Every rank reaches the same verdict from the same table. */
static int agree(const linalg_dist_ws *w, const dist_matrix *d, int k, svd_kind kind, int want,
                 const svd_opts *o, int status, const char *fn) {
  int mine[T_WIDTH] = {0};
  mine[T_STATUS] = status;
  mine[T_M] = d->m;
  mine[T_N] = d->n;
  mine[T_LAYOUT] = (int)d->layout;
  mine[T_OFF] = d->local_off;
  mine[T_LEN] = d->local_len;
  mine[T_K] = k;
  mine[T_KIND] = (int)kind;
  mine[T_WANT] = want;
  if (kind == SVD_RANDOMIZED) {
    mine[T_OVER] = o->oversample;
    mine[T_POWER] = o->power_iters;
    mine[T_SEED_LO] = (int)(uint32_t)o->seed;
    mine[T_SEED_HI] = (int)(uint32_t)(o->seed >> 32);
    mine[T_CTR_LO] = (int)(uint32_t)o->counter;
    mine[T_CTR_HI] = (int)(uint32_t)(o->counter >> 32);
  }
  int *t = w->ints;
  GORP_MPI(MPI_Allgather(mine, T_WIDTH, MPI_INT, t, T_WIDTH, MPI_INT, w->comm));
  if (status) return status;
  const int p = w->size;
  for (int r = 0; r < p; r++)
    if (t[r * T_WIDTH + T_STATUS])
      GORP_ERR(t[r * T_WIDTH + T_STATUS],
               "%s: stopped because rank %d of %d failed (see its message)", fn, r, p);
  static const struct {
    int field;
    const char *name;
  } same[] = {{T_M, "m"},
              {T_N, "n"},
              {T_LAYOUT, "layout"},
              {T_K, "k"},
              {T_KIND, "SVD kind"},
              {T_WANT, "left/right"},
              {T_OVER, "oversample"},
              {T_POWER, "power_iters"},
              {T_SEED_LO, "seed"},
              {T_SEED_HI, "seed"},
              {T_CTR_LO, "counter"},
              {T_CTR_HI, "counter"}};
  for (int r = 1; r < p; r++)
    for (size_t f = 0; f < sizeof same / sizeof same[0]; f++)
      if (t[r * T_WIDTH + same[f].field] != t[same[f].field])
        GORP_ERR(GORP_EINPUT,
                 "%s: rank %d passed %s = %d but rank 0 passed %d (a collective argument must be "
                 "the same on every rank)",
                 fn, r, same[f].name, t[r * T_WIDTH + same[f].field], t[same[f].field]);
  const int L = d->layout == DIST_ROWS ? d->m : d->n;
  int next = 0;
  for (int r = 0; r < p; r++) {
    if (t[r * T_WIDTH + T_OFF] != next)
      GORP_ERR(GORP_EINPUT,
               "%s: rank %d's range starts at %d but rank %d's ended at %d (the ranges must be "
               "contiguous, in rank order)",
               fn, r, t[r * T_WIDTH + T_OFF], r - 1, next);
    next += t[r * T_WIDTH + T_LEN];
  }
  if (next != L)
    GORP_ERR(GORP_EINPUT, "%s: the ranks' ranges cover %d of the %d %s", fn, next, L,
             d->layout == DIST_ROWS ? "rows" : "columns");
  return GORP_OK;
}

static int rank_off(const linalg_dist_ws *w, int r) {
  return w->ints[r * T_WIDTH + T_OFF];
}
static int rank_len(const linalg_dist_ws *w, int r) {
  return w->ints[r * T_WIDTH + T_LEN];
}

/* ---- randomized SVD on the shards ---- */

static lapack_int lwork_left(const linalg_dist_ws *w, size_t fixed) {
  size_t left = w->work_cap - fixed;
  return (lapack_int)(left < (size_t)INT_MAX ? left : (size_t)INT_MAX);
}

/* Orthonormalises the l rows of Y (l, len), split over the ranks along len (column-major
 * len x l per rank), by TSQR: local Householder QR, QR of the stacked R factors on the root,
 * and Q = Q_local Q_stacked-block. With one rank it is exactly linalg_orthonormalise(). */
static int tsqr(float *Y, float *buf, float *tau, float *work, lapack_int lwork, const plan *pl,
                linalg_dist_ws *w, const char *fn) {
  const int l = pl->l, len = pl->len, r = pl->r, p = pl->p;
  if (p == 1) return linalg_orthonormalise(Y, len, l, tau, work, lwork, fn);
  float *R = buf, *tmp = buf + (size_t)r * l; /* R (r x l), later this rank's block of Q */
  int rc = GORP_OK;
  if (r > 0) {
    lapack_int info = LAPACKE_sgeqrf_work(LAPACK_COL_MAJOR, len, l, Y, len, tau, work, lwork);
    for (int j = 0; j < l; j++)
      for (int i = 0; i < r; i++) R[i + (size_t)j * r] = i <= j ? Y[i + (size_t)j * len] : 0.0f;
    if (!info) info = LAPACKE_sorgqr_work(LAPACK_COL_MAJOR, len, r, r, Y, len, tau, work, lwork);
    if (info)
      rc = GORP_ERROR(GORP_ELIB, "%s: TSQR local sgeqrf/sorgqr (%d x %d) failed: info %d", fn, len,
                      l, (int)info);
  }
  int *cnt = w->ints + (size_t)p * T_WIDTH, *dsp = cnt + p, S = 0;
  for (int s = 0; s < p; s++) {
    cnt[s] = imin(rank_len(w, s), l) * l;
    dsp[s] = S * l;
    S += imin(rank_len(w, s), l);
  }
  float *stack = NULL, *pack = NULL;
  if (pl->rank == ROOT) {
    stack = tmp + (size_t)l * len;
    pack = stack + (size_t)pl->smax * l;
  }
  GORP_MPI(MPI_Gatherv(R, r * l, MPI_FLOAT, pack, cnt, dsp, MPI_FLOAT, ROOT, w->comm));
  if (pl->rank == ROOT && !rc) {
    for (int s = 0, row = 0; s < p; s++) { /* blocks (r_s x l) -> stacked (S x l), lda S */
      const int rs = cnt[s] / l;
      for (int j = 0; j < l; j++)
        for (int i = 0; i < rs; i++)
          stack[row + i + (size_t)j * S] = pack[dsp[s] + i + (size_t)j * rs];
      row += rs;
    }
    lapack_int info = LAPACKE_sgeqrf_work(LAPACK_COL_MAJOR, S, l, stack, S, tau, work, lwork);
    if (!info) info = LAPACKE_sorgqr_work(LAPACK_COL_MAJOR, S, l, l, stack, S, tau, work, lwork);
    if (info)
      rc = GORP_ERROR(GORP_ELIB, "%s: TSQR stacked sgeqrf/sorgqr (%d x %d) failed: info %d", fn, S,
                      l, (int)info);
    for (int s = 0, row = 0; s < p; s++) {
      const int rs = cnt[s] / l;
      for (int j = 0; j < l; j++)
        for (int i = 0; i < rs; i++)
          pack[dsp[s] + i + (size_t)j * rs] = stack[row + i + (size_t)j * S];
      row += rs;
    }
  }
  GORP_CALL(all_ok(rc, w, fn));
  GORP_MPI(MPI_Scatterv(pack, cnt, dsp, MPI_FLOAT, R, r * l, MPI_FLOAT, ROOT, w->comm));
  if (r > 0) { /* Y^T (l x len) = Qblock^T (l x r) Qlocal^T (r x len), all row-major views */
    GORP_CALL(gemm_z(0, 0, l, len, r, R, r, Y, len, tmp, len));
    memcpy(Y, tmp, (size_t)l * len * sizeof(float));
  }
  return GORP_OK;
}

/* X (l, len_vec), replicated: sums the ranks' partial products on the root, orthonormalises its
 * rows there and broadcasts the result (bit-identical everywhere). */
static int sum_orth_bcast(float *X, int len_vec, int l, float *tau, float *work, lapack_int lwork,
                          linalg_dist_ws *w, const char *fn) {
  if (w->size == 1) return linalg_orthonormalise(X, len_vec, l, tau, work, lwork, fn);
  const int count = l * len_vec;
  GORP_MPI(
      MPI_Reduce(w->rank == ROOT ? MPI_IN_PLACE : X, X, count, MPI_FLOAT, MPI_SUM, ROOT, w->comm));
  int rc = w->rank == ROOT ? linalg_orthonormalise(X, len_vec, l, tau, work, lwork, fn) : GORP_OK;
  GORP_CALL(all_ok(rc, w, fn));
  GORP_MPI(MPI_Bcast(X, count, MPI_FLOAT, ROOT, w->comm));
  return GORP_OK;
}

/* The sign convention on the columns of P (len, k), whose rows [off, off + len) are this rank's
 * part of each global vector: the first largest |entry| over all ranks decides (MPI_MAXLOC breaks
 * ties by the lower index; the index is 2 * row + (entry < 0), so it also carries the sign). */
typedef struct fi_pair {
  float v;
  int i;
} fi_pair;
static int sign_fix_split(float *P, int len, int k, int off, fi_pair *pairs, linalg_dist_ws *w) {
  for (int j = 0; j < k; j++) {
    float best = -1.0f;
    int at = INT_MAX;
    for (int i = 0; i < len; i++) {
      const float v = P[(size_t)i * k + j];
      if (fabsf(v) > best) { /* strict: the first of equal magnitudes wins */
        best = fabsf(v);
        at = 2 * (off + i) + (v < 0.0f);
      }
    }
    pairs[j].v = best;
    pairs[j].i = at;
  }
  if (w->size > 1)
    GORP_MPI(MPI_Allreduce(MPI_IN_PLACE, pairs, k, MPI_FLOAT_INT, MPI_MAXLOC, w->comm));
  for (int j = 0; j < k; j++)
    if (pairs[j].i != INT_MAX && (pairs[j].i & 1))
      for (int i = 0; i < len; i++) P[(size_t)i * k + j] = -P[(size_t)i * k + j];
  return GORP_OK;
}

/* DIST_ROWS: G_local (len, n). The sketch Yt (l, m) is split like G, the co-range X (l, n) and
 * B = Qy^T G are sums over the ranks (replicated via the root). */
static int randomized_rows(float *out, float *sv, const float *G, const plan *pl, const svd_opts *o,
                           linalg_dist_ws *w, const char *fn) {
  const int l = pl->l, n = pl->n, len = pl->len, k = pl->k;
  float *X = w->work;                    /* (l, n): Omega^T, then the co-range, then B */
  float *Y = X + (size_t)l * n;          /* (l, len): this rank's columns of Qy^T */
  float *s = Y + (size_t)l * len;        /* (l) */
  float *tau = s + l;                    /* (l) */
  fi_pair *pairs = (fi_pair *)(tau + l); /* (k) */
  float *tb = tau + l + 2 * (size_t)k;   /* TSQR buffers */
  float *work = w->work + pl->fixed, dummy = 0.0f;
  const lapack_int lwork = lwork_left(w, pl->fixed);

  for (int j = 0; j < l; j++)
    for (int i = 0; i < n; i++)
      X[(size_t)j * n + i] =
          (float)rng_normal(o->seed, RNG_STREAM_SVD, o->counter, (uint64_t)j * n + i);
  GORP_CALL(gemm_z(0, 1, l, len, n, X, n, G, n, Y, len)); /* Y = Omega^T G_local^T */
  GORP_CALL(tsqr(Y, tb, tau, work, lwork, pl, w, fn));
  for (int q = 0; q < o->power_iters; q++) {
    GORP_CALL(gemm_z(0, 0, l, n, len, Y, len, G, n, X, n)); /* X = Qy^T G, partial */
    GORP_CALL(sum_orth_bcast(X, n, l, tau, work, lwork, w, fn));
    GORP_CALL(gemm_z(0, 1, l, len, n, X, n, G, n, Y, len)); /* Y = X G_local^T */
    GORP_CALL(tsqr(Y, tb, tau, work, lwork, pl, w, fn));
  }
  /* B = Qy^T G (partial); X is B^T col-major */
  GORP_CALL(gemm_z(0, 0, l, n, len, Y, len, G, n, X, n));
  if (pl->p > 1)
    GORP_MPI(MPI_Reduce(pl->rank == ROOT ? MPI_IN_PLACE : X, X, l * n, MPI_FLOAT, MPI_SUM, ROOT,
                        w->comm));
  int rc = GORP_OK;
  if (pl->rank == ROOT) {
    lapack_int info =
        LAPACKE_sgesvd_work(LAPACK_COL_MAJOR, linalg_job_u(pl->want), linalg_job_vt(pl->want), n, l,
                            X, n, s, &dummy, 1, &dummy, 1, work, lwork);
    rc = linalg_gesvd_info(info, fn, l, n);
    if (!rc && pl->want == WANT_RIGHT) /* U of B^T = right vectors of B = those of G */
      for (int j = 0; j < k; j++) {
        memcpy(out + (size_t)j * n, X + (size_t)j * n, (size_t)n * sizeof(float));
        linalg_sign_fix(out + (size_t)j * n, n, 1);
      }
  }
  GORP_CALL(all_ok(rc, w, fn));
  if (pl->p > 1) {
    GORP_MPI(MPI_Bcast(s, l, MPI_FLOAT, ROOT, w->comm));
    if (pl->want == WANT_RIGHT)
      GORP_MPI(MPI_Bcast(out, k * n, MPI_FLOAT, ROOT, w->comm));
    else
      GORP_MPI(MPI_Bcast(X, l * n, MPI_FLOAT, ROOT, w->comm));
  }
  if (pl->want == WANT_LEFT) {
    /* X[j + t n] = Ub[t, j]: as row-major (l, n) Ub sits in the first k columns, so this rank's
     * rows of P = Qy Ub are Y^T (len, l) times it. */
    GORP_CALL(gemm_z(1, 0, len, k, l, Y, len, X, n, out, k));
    GORP_CALL(sign_fix_split(out, len, k, pl->off, pairs, w));
  }
  if (sv) memcpy(sv, s, (size_t)k * sizeof(float));
  return GORP_OK;
}

/* DIST_COLS: G_local (m, len). The sketch Yt (l, m) is a sum over the ranks (replicated via the
 * root), the co-range X (l, n) and B are split like G; B is gathered on the root for the small
 * SVD. */
static int randomized_cols(float *out, float *sv, const float *G, const plan *pl, const svd_opts *o,
                           linalg_dist_ws *w, const char *fn) {
  const int l = pl->l, m = pl->m, n = pl->n, len = pl->len, k = pl->k, p = pl->p;
  float *Y = w->work;                  /* (l, m): Omega^T G^T, then Qy^T */
  float *X = Y + (size_t)l * m;        /* (l, len): this rank's columns of Omega^T, co-range, B */
  float *s = X + (size_t)l * len;      /* (l) */
  float *tau = s + l;                  /* (l) */
  float *tb = tau + l + 2 * (size_t)k; /* TSQR buffers (no sign pairs needed here) */
  float *work = w->work + pl->fixed, dummy = 0.0f;
  const lapack_int lwork = lwork_left(w, pl->fixed);

  for (int j = 0; j < l; j++)
    for (int c = 0; c < len; c++)
      X[(size_t)j * len + c] = (float)rng_normal(o->seed, RNG_STREAM_SVD, o->counter,
                                                 (uint64_t)j * n + (uint64_t)(pl->off + c));
  GORP_CALL(gemm_z(0, 1, l, m, len, X, len, G, len, Y, m)); /* Y = Omega^T G^T, partial */
  GORP_CALL(sum_orth_bcast(Y, m, l, tau, work, lwork, w, fn));
  for (int q = 0; q < o->power_iters; q++) {
    GORP_CALL(gemm_z(0, 0, l, len, m, Y, m, G, len, X, len)); /* X = Qy^T G_local */
    GORP_CALL(tsqr(X, tb, tau, work, lwork, pl, w, fn));
    GORP_CALL(gemm_z(0, 1, l, m, len, X, len, G, len, Y, m)); /* Y = X G^T, partial */
    GORP_CALL(sum_orth_bcast(Y, m, l, tau, work, lwork, w, fn));
  }
  /* this rank's columns of B = Qy^T G */
  GORP_CALL(gemm_z(0, 0, l, len, m, Y, m, G, len, X, len));
  float *B = X; /* (l, n) on the root, lda n */
  if (p > 1) {
    float *gathered = tb + pl->tsqr_floats, *whole = gathered + (size_t)l * n;
    int *cnt = w->ints + (size_t)p * T_WIDTH, *dsp = cnt + p;
    for (int r = 0, at = 0; r < p; r++) {
      cnt[r] = l * rank_len(w, r);
      dsp[r] = at;
      at += cnt[r];
    }
    GORP_MPI(MPI_Gatherv(X, l * len, MPI_FLOAT, pl->rank == ROOT ? gathered : NULL, cnt, dsp,
                         MPI_FLOAT, ROOT, w->comm));
    if (pl->rank == ROOT) {
      for (int r = 0; r < p; r++)
        for (int j = 0; j < l; j++)
          memcpy(whole + (size_t)j * n + rank_off(w, r),
                 gathered + dsp[r] + (size_t)j * rank_len(w, r),
                 (size_t)rank_len(w, r) * sizeof(float));
      B = whole;
    }
  }
  int rc = GORP_OK;
  if (pl->rank == ROOT) {
    lapack_int info =
        LAPACKE_sgesvd_work(LAPACK_COL_MAJOR, linalg_job_u(pl->want), linalg_job_vt(pl->want), n, l,
                            B, n, s, &dummy, 1, &dummy, 1, work, lwork);
    rc = linalg_gesvd_info(info, fn, l, n);
    if (!rc && pl->want == WANT_RIGHT) {
      for (int j = 0; j < k; j++) {
        memcpy(out + (size_t)j * n, B + (size_t)j * n, (size_t)n * sizeof(float));
        linalg_sign_fix(out + (size_t)j * n, n, 1);
      }
    } else if (!rc) { /* B[j + t n] = Ub[t, j]; P = Qy Ub */
      rc = backend_get()->gemm(1, 0, m, k, l, 1.0f, Y, m, B, n, 0.0f, out, k);
      if (!rc)
        for (int j = 0; j < k; j++) linalg_sign_fix(out + j, m, k);
    }
  }
  GORP_CALL(all_ok(rc, w, fn));
  if (p > 1) {
    GORP_MPI(MPI_Bcast(s, l, MPI_FLOAT, ROOT, w->comm));
    GORP_MPI(MPI_Bcast(out, pl->want == WANT_RIGHT ? k * n : m * k, MPI_FLOAT, ROOT, w->comm));
  }
  if (sv) memcpy(sv, s, (size_t)k * sizeof(float));
  return GORP_OK;
}

/* ---- exact: ScaLAPACK psgesvd on A = G^T (n x m, column-major as G is row-major) ---- */

static int descriptors(const plan *pl, int *desca, int *descv) {
  const int zero = 0;
  int info = 0, info2 = 0;
  descinit_(desca, &pl->n, &pl->m, &pl->nb, &pl->nb, &zero, &zero, &pl->ctxt, &pl->lld, &info);
  if (pl->want == WANT_RIGHT) /* U (n x size) */
    descinit_(descv, &pl->n, &pl->size, &pl->nb, &pl->nb, &zero, &zero, &pl->ctxt, &pl->lldv,
              &info2);
  else /* VT (size x m) */
    descinit_(descv, &pl->size, &pl->m, &pl->nb, &pl->nb, &zero, &zero, &pl->ctxt, &pl->lldv,
              &info2);
  if (info || info2)
    GORP_ERR(GORP_ELIB, "descinit failed (info %d/%d) for a (%d x %d) matrix on a %d x %d grid",
             info, info2, pl->n, pl->m, pl->nprow, pl->npcol);
  return GORP_OK;
}

/* psgesvd with lwork = -1: the least work it accepts (0 outside the grid). Collective. */
static int query_psgesvd(const plan *pl, size_t *lwork, const char *fn) {
  *lwork = 0;
  if (!pl->in_grid) return GORP_OK;
  int desca[9], descv[9];
  GORP_CALL(descriptors(pl, desca, descv));
  const char ju = pl->want == WANT_RIGHT ? 'V' : 'N', jv = pl->want == WANT_LEFT ? 'V' : 'N';
  const int one = 1, query = -1;
  const int *descu = pl->want == WANT_RIGHT ? descv : desca;
  const int *descvt = pl->want == WANT_LEFT ? descv : desca;
  float q = 0.0f, dummy = 0.0f;
  int info = 0;
  psgesvd_(&ju, &jv, &pl->n, &pl->m, &dummy, &one, &one, desca, &dummy, &dummy, &one, &one, descu,
           &dummy, &one, &one, descvt, &q, &query, &info, 1, 1);
  if (info)
    GORP_ERR(GORP_ELIB, "%s: psgesvd workspace query (%c%c, %d x %d) failed: info %d", fn, ju, jv,
             pl->n, pl->m, info);
  *lwork = linalg_lwork_from(q);
  return GORP_OK;
}

/* Moves the contiguous shards of G into the block-cyclic A = G^T (one MPI_Alltoallv). A unit is
 * one index of the split axis: a row of G (n contiguous floats, a column of A) for DIST_ROWS, a
 * column of G (m floats, stride len; a row of A) for DIST_COLS. */
static int redistribute(float *A, const float *G, float *send, float *recv, const plan *pl,
                        linalg_dist_ws *w) {
  const int p = pl->p, q = pl->q, nb = pl->nb, off = pl->off, len = pl->len, m = pl->m, n = pl->n;
  const int rows = pl->layout == DIST_ROWS, me = pl->rank; /* grid position = rank */
  int *sc = w->ints + (size_t)p * T_WIDTH, *sd = sc + p, *rc = sd + p, *rd = rc + p;
  int a, b, cursor;
  for (int d = 0, at = 0; d < p; d++) {
    sc[d] = d < q ? owned(off, off + len, nb, q, d) * pl->O : 0;
    sd[d] = at;
    at += sc[d];
  }
  for (int s = 0, at = 0; s < p; s++) {
    rc[s] = me < q ? owned(rank_off(w, s), rank_off(w, s) + rank_len(w, s), nb, q, me) * pl->O : 0;
    rd[s] = at;
    at += rc[s];
  }
  size_t at = 0;
  for (int d = 0; d < q; d++) {
    if (rows) {
      for (cursor = off; next_seg(&cursor, off + len, nb, q, d, &a, &b);) {
        memcpy(send + at, G + (size_t)(a - off) * n, (size_t)(b - a) * n * sizeof(float));
        at += (size_t)(b - a) * n;
      }
    } else {
      for (int i = 0; i < m; i++)
        for (cursor = off; next_seg(&cursor, off + len, nb, q, d, &a, &b);) {
          memcpy(send + at, G + (size_t)i * len + (a - off), (size_t)(b - a) * sizeof(float));
          at += (size_t)(b - a);
        }
    }
  }
  GORP_MPI(MPI_Alltoallv(send, sc, sd, MPI_FLOAT, recv, rc, rd, MPI_FLOAT, w->comm));
  for (int s = 0; s < p && me < q; s++) {
    const int lo = rank_off(w, s), hi = lo + rank_len(w, s);
    at = (size_t)rd[s];
    if (rows) {
      for (cursor = lo; next_seg(&cursor, hi, nb, q, me, &a, &b);) {
        memcpy(A + (size_t)bc_local(a, nb, q) * pl->lld, recv + at,
               (size_t)(b - a) * n * sizeof(float));
        at += (size_t)(b - a) * n;
      }
    } else {
      for (int i = 0; i < m; i++)
        for (cursor = lo; next_seg(&cursor, hi, nb, q, me, &a, &b);) {
          memcpy(A + bc_local(a, nb, q) + (size_t)i * pl->lld, recv + at,
                 (size_t)(b - a) * sizeof(float));
          at += (size_t)(b - a);
        }
    }
  }
  return GORP_OK;
}

static int exact(float *out, float *sv, const float *G, const plan *pl, linalg_dist_ws *w,
                 const char *fn) {
  const int m = pl->m, n = pl->n, k = pl->k, p = pl->p;
  const size_t asz = zmax(1, (size_t)pl->lld * pl->nq), vsz = zmax(1, (size_t)pl->lldv * pl->nv);
  if (pl->ctxt == -2)
    GORP_ERR(GORP_EINPUT, "%s: no BLACS grid of %d ranks yet: call linalg_dist_ws_reserve first",
             fn, pl->q);
  float *A = w->work, *V = A + asz, *s = V + vsz, *send = s + pl->size;
  float *recv = send + (size_t)pl->len * pl->O, *whole = recv + asz; /* whole P (DIST_ROWS) */
  float *work = w->work + pl->fixed;

  GORP_CALL(redistribute(A, G, send, recv, pl, w));
  size_t need = 0;
  GORP_CALL(query_psgesvd(pl, &need, fn));
  int rc = GORP_OK;
  if (pl->fixed + need > w->work_cap)
    rc = GORP_ERROR(GORP_EINPUT,
                    "%s: psgesvd on the (%d x %d) matrix needs %zu floats of workspace on this "
                    "rank but %zu are reserved: call linalg_dist_ws_reserve with this matrix first",
                    fn, m, n, pl->fixed + need, w->work_cap);
  GORP_CALL(all_ok(rc, w, fn));
  int desca[9], descv[9], info = 0;
  if (pl->in_grid) {
    GORP_CALL(descriptors(pl, desca, descv));
    const char ju = pl->want == WANT_RIGHT ? 'V' : 'N', jv = pl->want == WANT_LEFT ? 'V' : 'N';
    const int one = 1, lwork = (int)lwork_left(w, pl->fixed);
    const int *descu = pl->want == WANT_RIGHT ? descv : desca;
    const int *descvt = pl->want == WANT_LEFT ? descv : desca;
    psgesvd_(&ju, &jv, &n, &m, A, &one, &one, desca, s, V, &one, &one, descu, V, &one, &one, descvt,
             work, &lwork, &info, 1, 1);
  }
  if (info < 0)
    rc = GORP_ERROR(GORP_ELIB, "%s: psgesvd rejected argument %d", fn, -info);
  else if (info > 0)
    rc = GORP_ERROR(GORP_ENUM, "%s: psgesvd failed on the (%d x %d) matrix: info %d (%s)", fn, m, n,
                    info,
                    info == pl->size + 1 ? "singular values differ between ranks"
                                         : "the bidiagonal QR did not converge");
  GORP_CALL(all_ok(rc, w, fn));
  /* The grid's ranks hold the same values (psgesvd checks); the others get rank 0's. */
  if (pl->q < p) GORP_MPI(MPI_Bcast(s, k, MPI_FLOAT, ROOT, w->comm));

  /* Every rank writes the entries it owns into a zeroed copy; one all-reduce of these disjoint
   * pieces (x + 0 = x exactly) gives every rank the same vectors. */
  if (pl->want == WANT_RIGHT) { /* Q[j, i] = U(i, j) */
    memset(out, 0, (size_t)k * n * sizeof(float));
    for (int lc = 0; lc < pl->nv; lc++) {
      const int j = bc_global(lc, pl->nb, pl->mycol, pl->npcol);
      if (j >= k) continue;
      for (int lr = 0; lr < pl->mv; lr++)
        out[(size_t)j * n + bc_global(lr, pl->nb, pl->myrow, pl->nprow)] =
            V[lr + (size_t)lc * pl->lldv];
    }
    if (p > 1) GORP_MPI(MPI_Allreduce(MPI_IN_PLACE, out, k * n, MPI_FLOAT, MPI_SUM, w->comm));
    for (int j = 0; j < k; j++) linalg_sign_fix(out + (size_t)j * n, n, 1);
  } else { /* P[i, j] = VT(j, i) */
    float *P = pl->layout == DIST_ROWS ? whole : out;
    memset(P, 0, (size_t)m * k * sizeof(float));
    for (int lc = 0; lc < pl->nv; lc++) {
      const int i = bc_global(lc, pl->nb, pl->mycol, pl->npcol);
      for (int lr = 0; lr < pl->mv; lr++) {
        const int j = bc_global(lr, pl->nb, pl->myrow, pl->nprow);
        if (j < k) P[(size_t)i * k + j] = V[lr + (size_t)lc * pl->lldv];
      }
    }
    if (p > 1) GORP_MPI(MPI_Allreduce(MPI_IN_PLACE, P, m * k, MPI_FLOAT, MPI_SUM, w->comm));
    for (int j = 0; j < k; j++) linalg_sign_fix(P + j, m, k);
    if (P != out) memcpy(out, P + (size_t)pl->off * k, (size_t)pl->len * k * sizeof(float));
  }
  if (sv) memcpy(sv, s, (size_t)k * sizeof(float));
  return GORP_OK;
}

/* ---- workspace ---- */

int linalg_dist_ws_init(linalg_dist_ws *w, MPI_Comm comm) {
  if (w->ready) GORP_ERR(GORP_EINPUT, "linalg_dist_ws_init: the workspace is already initialised");
  w->comm = comm;
  GORP_MPI(MPI_Comm_rank(comm, &w->rank));
  GORP_MPI(MPI_Comm_size(comm, &w->size));
  const int p = w->size;
  GORP_ALLOC(w->grids, 2 * (size_t)(p + 1), "BLACS grid table");
  GORP_ALLOC(w->ints, (size_t)p * INTS_PER_RANK, "distributed SVD argument table");
  for (int i = 0; i < 2 * (p + 1); i++) w->grids[i] = -2;
  w->blacs_sys = Csys2blacs_handle(comm);
  w->ready = 1;
  return GORP_OK;
}

/* Makes the 1 x q (cols = 0) or q x 1 (cols = 1) grid on ranks 0..q-1 of the communicator, once.
 * Collective. The block-cyclic arithmetic takes a rank's grid position to be its rank: checked. */
static int grid_make(linalg_dist_ws *w, int q, int cols) {
  int *ctxt = &w->grids[2 * q + cols];
  if (*ctxt != -2) return GORP_OK;
  char order[] = "R";
  *ctxt = w->blacs_sys;
  Cblacs_gridinit(ctxt, order, cols ? q : 1, cols ? 1 : q);
  int rc = GORP_OK;
  if (w->rank >= q) {
    *ctxt = -1; /* BLACS leaves a rank outside the grid out of the context */
  } else {
    int pr = -1, pc = -1, r = -1, c = -1;
    Cblacs_gridinfo(*ctxt, &pr, &pc, &r, &c);
    const int want_r = cols ? w->rank : 0, want_c = cols ? 0 : w->rank;
    if (pr != (cols ? q : 1) || pc != (cols ? 1 : q) || r != want_r || c != want_c)
      rc = GORP_ERROR(GORP_ELIB,
                      "BLACS placed rank %d at (%d, %d) of a %d x %d grid; expected (%d, %d) of "
                      "%d x %d",
                      w->rank, r, c, pr, pc, want_r, want_c, cols ? q : 1, cols ? 1 : q);
  }
  return all_ok(rc, w, "linalg_dist_ws_reserve");
}

static int grow(linalg_dist_ws *w, size_t need) {
  if (need <= w->work_cap) return GORP_OK;
  free(w->work);
  w->work = NULL;
  w->work_cap = 0;
  GORP_ALLOC(w->work, need, "distributed SVD workspace");
  w->work_cap = need;
  w->n_grow++;
  return GORP_OK;
}

/* Optimal LAPACK work of every local step the randomized path may take on this rank. */
static int randomized_lwork(const plan *pl, size_t *lwork) {
  size_t best = pl->min_lwork, lw = 0;
  GORP_CALL(query_qr(&lw, pl->m, pl->l, pl->l)); /* the replicated side, or p = 1 */
  best = zmax(best, lw);
  GORP_CALL(query_qr(&lw, pl->n, pl->l, pl->l));
  best = zmax(best, lw);
  if (pl->p > 1) {
    GORP_CALL(query_qr(&lw, pl->smax, pl->l, pl->l)); /* stacked R factors */
    best = zmax(best, lw);
    if (pl->r > 0) {
      GORP_CALL(query_qr(&lw, pl->len, pl->l, pl->r)); /* this rank's shard */
      best = zmax(best, lw);
    }
  }
  GORP_CALL(linalg_query_gesvd(&lw, linalg_job_u(pl->want), linalg_job_vt(pl->want), pl->n, pl->l));
  *lwork = zmax(best, lw);
  return GORP_OK;
}

int linalg_dist_ws_reserve(linalg_dist_ws *w, const dist_matrix *d, int k, const svd_opts *o) {
  static const char fn[] = "linalg_dist_ws_reserve";
  if (!w->ready) GORP_ERR(GORP_EINPUT, "%s: call linalg_dist_ws_init first", fn);
  svd_opts def;
  svd_opts_default(&def);
  if (!o) o = &def;
  plan pl;
  int status = local_check(&pl, NULL, d, k, SVD_RANDOMIZED, o, WANT_RIGHT, 0, w, fn);
  GORP_CALL(agree(w, d, k, SVD_RANDOMIZED, WANT_RIGHT, o, status, fn));
  size_t need = 0, lw = 0;
  const int wants[] = {WANT_LEFT, WANT_RIGHT};
  int rc = GORP_OK;
  for (int i = 0; i < 2; i++) {
    plan_fill(&pl, d, k, SVD_RANDOMIZED, wants[i], o, w);
    if (!rc) rc = randomized_lwork(&pl, &lw);
    need = zmax(need, pl.fixed + lw);
    const int q = imin(w->size, imin(d->m, d->n));
    GORP_CALL(grid_make(w, q, d->layout == DIST_COLS));
    plan_fill(&pl, d, k, SVD_EXACT, wants[i], o, w);
    GORP_CALL(query_psgesvd(&pl, &lw, fn)); /* collective: every grid rank queries the same */
    need = zmax(need, pl.fixed + lw);
  }
  if (!rc) rc = grow(w, need);
  return all_ok(rc, w, fn);
}

void linalg_dist_ws_free(linalg_dist_ws *w) {
  if (w->ready) {
    for (int i = 0; i < 2 * (w->size + 1); i++)
      if (w->grids[i] >= 0) Cblacs_gridexit(w->grids[i]);
    Cfree_blacs_system_handle(w->blacs_sys);
  }
  free(w->work);
  free(w->grids);
  free(w->ints);
  memset(w, 0, sizeof *w);
  w->comm = MPI_COMM_NULL;
}

void linalg_dist_finalize(void) {
  Cblacs_exit(1);
}

/* ---- entry points ---- */

static int topk(float *out, float *sv, const float *G, const dist_matrix *d, int k, svd_kind kind,
                const svd_opts *o, int want, const char *fn, linalg_dist_ws *w) {
  if (!w->ready) GORP_ERR(GORP_EINPUT, "%s: call linalg_dist_ws_init first", fn);
  svd_opts def;
  svd_opts_default(&def);
  if (!o) o = &def;
  plan pl;
  int status = local_check(&pl, G, d, k, kind, o, want, 1, w, fn);
  GORP_CALL(agree(w, d, k, kind, want, o, status, fn));
  if (kind == SVD_EXACT) {
    GORP_CALL(exact(out, sv, G, &pl, w, fn));
  } else if (d->layout == DIST_ROWS) {
    GORP_CALL(randomized_rows(out, sv, G, &pl, o, w, fn));
  } else {
    GORP_CALL(randomized_cols(out, sv, G, &pl, o, w, fn));
  }
  return GORP_OK;
}

int linalg_dist_topk_right(float *Q, float *sv, const float *G_local, const dist_matrix *d, int k,
                           svd_kind kind, const svd_opts *o, linalg_dist_ws *w) {
  return topk(Q, sv, G_local, d, k, kind, o, WANT_RIGHT, "linalg_dist_topk_right", w);
}

int linalg_dist_topk_left(float *P, float *sv, const float *G_local, const dist_matrix *d, int k,
                          svd_kind kind, const svd_opts *o, linalg_dist_ws *w) {
  return topk(P, sv, G_local, d, k, kind, o, WANT_LEFT, "linalg_dist_topk_left", w);
}
