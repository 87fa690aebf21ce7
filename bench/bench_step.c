/* The memory and time of training steps as `gorp run` takes them, without data, evaluation rows or
 * checkpoints, so that a model that would take hours to load, evaluate and save (LLaMA-2-7B's
 * shape) can be measured on one machine: the model of a config (model.init = random: its
 * architecture keys, weights drawn as gorp run draws them; or a model file), held as model.dtype
 * says, the trainer of its run.method (with train.recompute and full.stream_grad as set), and
 * STEPS optimizer steps on a random batch of train.batch_size sequences of SEQ tokens whose last
 * data.max_target_length tokens carry the loss (as an answer does); then greedy decoding of
 * eval.batch_size prompts of SEQ - NEW tokens for NEW ids (the evaluation's KV caches and
 * prefill). Every rank of an `mpirun` takes part (parallel.tp, parallel.dp). --hf-config PATH
 * takes the architecture from a Hugging Face config.json (or the folder holding it) as `gorp plan
 * --hf-config` does, with random weights.
 *   bench_step CONFIG.ini SEQ STEPS NEW [--hf-config PATH] [section.key=value ...]
 * prints per step its loss and seconds, then one line per rank:
 *   bench-step rank=R steps=N mean_step_s=.. min_step_s=.. tokens_per_s=.. decode_s=..
 *              peak_rss_mb=..
 * where peak_rss_mb is the process's VmHWM (proc.h), to compare with `gorp plan`'s "total per
 * rank" for the same config (bench/bench_7b_step.sh does).
 * Not for: correctness (tests/), the whole run's cost (bench_run_ab.sh). */
#include "gorp/backend.h"
#include "gorp/config.h"
#include "gorp/dist.h"
#include "gorp/err.h"
#include "gorp/hf_import.h"
#include "gorp/model.h"
#include "gorp/modelfile.h"
#include "gorp/proc.h"
#include "gorp/rng.h"
#include "gorp/trainer.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bench(const char *ini, int seq, int steps, int new_ids, const char *hf_config,
                 char *const *sets, int n_sets) {
  gorp_config c;
  GORP_CALL(config_load(&c, ini, sets, n_sets));
  if (hf_config && strcmp(c.model.init, "random"))
    GORP_ERR(GORP_EUSAGE, "--hf-config needs model.init = random (got %s)", c.model.init);
  if (hf_config) GORP_CALL(hf_config_read(hf_config, &c.model.arch, NULL));
  dist d;
  GORP_CALL(dist_init(&d, c.parallel.tp, c.parallel.dp));
  GORP_CALL(backend_select(c.run.backend));
  model m;
  const model_prep prep = {trainer_prepare_model, &c};
  if (!strcmp(c.model.init, "random")) {
    GORP_CALL(model_plan_tp(&m, &c.model.arch, &d));
    GORP_CALL(model_alloc_params(&m, &prep));
    model_init_random(&m, c.run.seed, c.model.init_std, c.model.embed_init_std);
  } else {
    GORP_CALL(modelfile_load_tp(&m, c.model.init, &d, &prep));
  }
  const int V = m.cfg.vocab_size, B = c.train.batch_size, answer = c.data.max_target_length;
  if (seq > m.cfg.max_seq || new_ids >= seq || answer >= seq)
    GORP_ERR(GORP_EUSAGE, "SEQ %d must be <= max_seq %d and above NEW %d and the answer %d", seq,
             m.cfg.max_seq, new_ids, answer);
  trainer tr;
  GORP_CALL(trainer_create(&tr, &m, &c, c.run.method, c.data.n_tasks, &d));
  task_train tt;
  config_task_train(&c, c.data.tasks[0], &tt);
  GORP_CALL(trainer_begin_task(&tr, 0, &tt));
  int *tokens, *targets; /* (B, seq) */
  int64_t *ids;          /* (B) */
  GORP_ALLOC(tokens, (size_t)B * seq, "tokens");
  GORP_ALLOC(targets, (size_t)B * seq, "targets");
  GORP_ALLOC(ids, B, "example ids");
  for (int b = 0; b < B; b++) {
    ids[b] = b;
    for (int t = 0; t < seq; t++) {
      const size_t i = (size_t)b * seq + t;
      tokens[i] =
          (int)(rng_bits(c.run.seed, RNG_STREAM_SHUFFLE, (uint64_t)b, (uint64_t)t) % (uint64_t)V);
      targets[i] = t >= seq - answer - 1 && t + 1 < seq ? tokens[i + 1] : -1;
    }
  }
  double total = 0.0, best = 0.0;
  for (int s = 0; s < steps; s++) {
    GORP_CALL(dist_barrier(&d));
    const double t0 = proc_now_s();
    float loss;
    GORP_CALL(trainer_step(&tr, tokens, targets, NULL, ids, B, seq, (uint64_t)s, &loss));
    const double dt = proc_now_s() - t0;
    total += dt;
    if (s == 0 || dt < best) best = dt;
    if (d.rank == 0) printf("step %d loss %.6f step_s %.3f\n", s + 1, loss, dt);
    fflush(stdout);
  }
  /* evaluation: eval.batch_size prompts decoded together, as gorp run's rows */
  const int Be = c.eval.batch_size, plen = seq - new_ids;
  const int **prompts;
  int *n_prompt, *out, *n_out;
  GORP_ALLOC(prompts, Be, "prompts");
  GORP_ALLOC(n_prompt, Be, "prompt lengths");
  GORP_ALLOC(out, (size_t)Be * new_ids, "decoded ids");
  GORP_ALLOC(n_out, Be, "decoded lengths");
  for (int b = 0; b < Be; b++) {
    prompts[b] = tokens + (size_t)(b % B) * seq;
    n_prompt[b] = plen;
  }
  const double t0 = proc_now_s();
  GORP_CALL(model_generate(&m, prompts, n_prompt, Be, new_ids, NULL, 0, out, n_out));
  const double decode_s = proc_now_s() - t0;
  for (int r = 0; r < d.size; r++) {
    GORP_CALL(dist_barrier(&d));
    if (r == d.rank)
      printf("bench-step rank=%d steps=%d mean_step_s=%.3f min_step_s=%.3f tokens_per_s=%.1f "
             "decode_s=%.3f peak_rss_mb=%.1f\n",
             d.rank, steps, total / steps, best, (double)B * seq * steps / total, decode_s,
             proc_peak_rss_mb());
    fflush(stdout);
  }
  free(prompts), free(n_prompt), free(out), free(n_out);
  free(tokens), free(targets), free(ids);
  trainer_free(&tr);
  model_free(&m);
  dist_free(&d);
  config_free(&c);
  return GORP_OK;
}

int main(int argc, char **argv) {
  backend_blas_core_init(argv); /* gorp's own BLAS kernels (backend.h) */
  if (argc < 5 || atoi(argv[2]) < 2 || atoi(argv[3]) < 1 || atoi(argv[4]) < 1 ||
      (argc > 5 && !strcmp(argv[5], "--hf-config") && argc < 7)) {
    fprintf(stderr, "usage: bench_step CONFIG.ini SEQ STEPS NEW [--hf-config PATH] "
                    "[section.key=value ...]\n");
    return 2;
  }
  const int hf = argc > 5 && !strcmp(argv[5], "--hf-config");
  MPI_Init(&argc, &argv);
  int world;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  backend_threads_init(world);
  const int rc = bench(argv[1], atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), hf ? argv[6] : NULL,
                       argv + 5 + 2 * hf, argc - 5 - 2 * hf);
  if (rc) MPI_Abort(MPI_COMM_WORLD, 1);
  MPI_Finalize();
  return 0;
}
