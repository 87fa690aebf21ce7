/* Checkpoint size and save time, lean against full (issue 17): loads the model file a config's
 * model.init names, builds the trainer of its run.method, prepares a mid-task position (the pair
 * and optimizers of task 1, as a periodic checkpoint inside a task holds them) and saves it with
 * gorp's own checkpoint code (cl_ckpt_save: write, fsync, rename, LATEST) into the config's
 * run.out_dir, REPS times lean and REPS times full, alternating; the full one is what a save
 * wrote before lean checkpoints (the same code with the model marked as not read from a file).
 *   bench_ckpt CONFIG.ini REPS
 * prints one line per kind: bytes of the file, best and median seconds of the save.
 * One rank (no MPI). Not for: correctness (tests/cli/lean_checkpoint.sh), parallel file systems. */
#include "gorp/backend.h"
#include "gorp/cl_ckpt.h"
#include "gorp/config.h"
#include "gorp/err.h"
#include "gorp/modelfile.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* One save of the current state; its time in *s and the file's size in *bytes. */
static int save_once(const gorp_config *c, trainer *tr, cl_results *res, double *s, long *bytes) {
  const float loss = 1.0f; /* (1) the task's losses so far */
  const ckpt_pos p = {.task = 0, .step = 1, .done = 0, .losses = (float *)&loss};
  const double t0 = now_s();
  GORP_CALL(cl_ckpt_save(c, NULL, tr, res, &p));
  *s = now_s() - t0;
  char latest[4200], name[256] = "", path[4500];
  snprintf(latest, sizeof(latest), "%s/checkpoints/LATEST", c->run.out_dir);
  FILE *f = fopen(latest, "r");
  if (!f || !fgets(name, sizeof(name), f)) GORP_ERR(GORP_EIO, "cannot read %s", latest);
  fclose(f);
  name[strcspn(name, "\n")] = '\0';
  snprintf(path, sizeof(path), "%s/checkpoints/%s", c->run.out_dir, name);
  struct stat st;
  if (stat(path, &st)) GORP_ERR(GORP_EIO, "cannot stat %s", path);
  *bytes = (long)st.st_size;
  return GORP_OK;
}

static int bench(const char *ini, int reps) {
  gorp_config c;
  GORP_CALL(config_load(&c, ini, NULL, 0));
  model m;
  GORP_CALL(modelfile_load(&m, c.model.init));
  trainer tr;
  const int T = c.data.n_tasks;
  GORP_CALL(trainer_create(&tr, &m, &c, c.run.method, T, NULL));
  GORP_CALL(trainer_resume_at(&tr, 0, 1, 1));
  double *acc;
  GORP_ALLOC(acc, 2 * (size_t)(T + 1) * T, "the accuracy matrices");
  cl_results res = {.T = T, .acc = acc, .in_list = acc + (size_t)(T + 1) * T};
  double *t;
  GORP_ALLOC(t, 2 * (size_t)reps, "the timings");
  long bytes[2] = {0, 0};
  for (int r = 0; r < reps; r++)
    for (int k = 0; k < 2; k++) { /* k = 0 lean, 1 full: alternating, the same load for both */
      m.from_file = k == 0;
      GORP_CALL(save_once(&c, &tr, &res, &t[k * reps + r], &bytes[k]));
    }
  const char *kinds[2] = {"lean", "full"};
  for (int k = 0; k < 2; k++) {
    qsort(t + k * reps, (size_t)reps, sizeof(double), by_value);
    printf("%s method=%s params=%zu bytes=%ld best_s=%.3f median_s=%.3f\n", kinds[k], c.run.method,
           m.n_params, bytes[k], t[k * reps], t[k * reps + reps / 2]);
  }
  free(t);
  free(acc);
  trainer_free(&tr);
  model_free(&m);
  config_free(&c);
  return GORP_OK;
}

int main(int argc, char **argv) {
  backend_blas_core_init(argv); /* gorp's own BLAS kernels (backend.h) */
  if (argc != 3 || atoi(argv[2]) < 1) {
    fprintf(stderr, "usage: bench_ckpt CONFIG.ini REPS\n");
    return 2;
  }
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* gorp's messages name the failures, as in gorp */
  return bench(argv[1], atoi(argv[2])) ? 1 : 0;
}
