/* Shared helpers of the C unit tests (see testutil.h). */
#define _XOPEN_SOURCE 700 /* nftw */
#include "testutil.h"

#include <math.h>

#include <mpi.h>

#include "gorp/config.h"
#include "gorp/linalg_dist.h"

#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int n_pass, n_fail;

static int saved_stderr = -1;
static FILE *captured;

void capture_begin(void) {
  fflush(stderr);
  captured = tmpfile();
  saved_stderr = dup(2);
  if (!captured || saved_stderr < 0 || dup2(fileno(captured), 2) < 0) {
    perror("capturing stderr");
    exit(2);
  }
}

char *capture_end(void) {
  fflush(stderr);
  dup2(saved_stderr, 2);
  close(saved_stderr);
  long n = ftell(captured);
  char *text = calloc((size_t)n + 1, 1);
  if (!text) exit(2);
  rewind(captured);
  if (fread(text, 1, (size_t)n, captured) != (size_t)n) text[0] = '\0';
  fclose(captured);
  return text;
}

int tests_finish(void) {
  printf("%d passed, %d failed\n", n_pass, n_fail);
  return n_fail != 0;
}

void fmt_path(char *out, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int len = vsnprintf(out, PATH_MAX, fmt, ap);
  va_end(ap);
  if (len < 0 || len >= PATH_MAX) {
    fprintf(stderr, "path too long: %s\n", out);
    exit(2);
  }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

void rm_tree(const char *dir) {
  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int config_from_text(gorp_config *c, const char *text, char *const *overrides, int n) {
  char dir[] = "/tmp/gorp_test_cfg_XXXXXX", path[64];
  if (!mkdtemp(dir)) return 1;
  snprintf(path, sizeof(path), "%s/c.ini", dir);
  FILE *f = fopen(path, "w");
  if (!f) return 1;
  fputs(text, f);
  fclose(f);
  const int rc = config_load(c, path, overrides, n);
  rm_tree(dir);
  return rc;
}

int launched_by_mpi(void) {
  return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

void check_all(const char *name, int ok, double value, const char *fmt) {
  int all_ok = ok, rank = 0, nprocs = 1;
  double worst = value;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nprocs);
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&value, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  all_ok ? n_pass++ : n_fail++;
  if (rank == 0) {
    printf("%s p=%d %-72s ", all_ok ? "PASS" : "FAIL", nprocs, name);
    printf(fmt, worst);
    printf("\n");
    fflush(stdout);
  }
}

void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);
  if (!p) {
    fprintf(stderr, "test: out of memory\n");
    exit(2);
  }
  return p;
}

float *dist_shard_copy(const float *G, const dist_matrix *d) {
  const int len = d->local_len;
  float *S = xcalloc((size_t)len * (d->layout == DIST_ROWS ? d->n : d->m), sizeof(float));
  if (d->layout == DIST_ROWS)
    memcpy(S, G + (size_t)d->local_off * d->n, (size_t)len * d->n * sizeof(float));
  else
    for (int i = 0; i < d->m; i++)
      memcpy(S + (size_t)i * len, G + (size_t)i * d->n + d->local_off, (size_t)len * sizeof(float));
  return S;
}

double rel_diff(const float *a, const float *b, size_t n) {
  double e = 0.0, big = 0.0;
  for (size_t i = 0; i < n; i++) {
    e = fmax(e, fabs((double)a[i] - b[i]));
    big = fmax(big, fabs((double)b[i]));
  }
  return big > 0 ? e / big : INFINITY;
}
