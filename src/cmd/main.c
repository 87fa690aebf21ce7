/* The gorp command: an MPI program (also runs as a singleton without mpirun) that dispatches to
 * one subcommand; a serial one (gorp inspect) runs without MPI. A failure on any rank ends the
 * whole job with the failing rank's message. */
#include "gorp/backend.h"
#include "gorp/cmd.h"
#include "gorp/err.h"

#include <hdf5.h>
#include <mpi.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static const struct {
  const char *name;
  int (*fn)(int, char **);
  const char *help;
  int serial; /* 1: one process reading files, no MPI (starts in milliseconds, not ~0.3 s) */
} commands[] = {
    {"run", cmd_run, "run CONFIG.ini [--set section.key=value]...  train and evaluate", 0},
    {"import-hf", cmd_import_hf, "import-hf DIR OUT.h5  convert a Hugging Face LLaMA directory", 0},
    {"logits", cmd_logits, "logits --model M.h5 --tokens IDS.txt --out OUT.h5  write logits", 0},
    {"grad", cmd_grad, "grad --model M.h5 --tokens IDS.txt --out OUT.h5  write loss gradients", 0},
    {"pretrain", cmd_pretrain,
     "pretrain CONFIG.ini [--set k=v]...  train the synthetic suite's base", 0},
    {"inspect", cmd_inspect, "inspect FILE.h5 [--verify]  summarise a model file or checkpoint", 1},
    {"config", cmd_config, "config CONFIG.ini [--set k=v]... | --schema  show the resolved config",
     0},
    {"fit", cmd_fit, "fit --model M.h5 --tokens IDS.txt --steps N [...]  AdamW on a fixed batch",
     0},
    {"generate", cmd_generate,
     "generate --model M.h5 --tokens IDS.txt --max-new N [--eos ID --out F --time]  greedy "
     "decoding",
     0},
    {"plan", cmd_plan,
     "plan CONFIG.ini [--set k=v]... [--tp N] [--dp N] [--seq T] [--json]  memory and FLOPs per "
     "rank",
     0},
};

static void usage(FILE *f) {
  fprintf(f, "usage: gorp COMMAND [ARGS]\ncommands:\n");
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
    fprintf(f, "  gorp %s\n", commands[i].help);
}

int main(int argc, char **argv) {
  /* before MPI_Init, which takes ~0.3 s: a signal to gorp run is never lost at start-up */
  if (argc >= 2 && !strcmp(argv[1], "run") && cmd_run_catch_stop_signals()) return GORP_ELIB;
  const size_t n = sizeof(commands) / sizeof(commands[0]);
  size_t i = 0;
  while (argc >= 2 && i < n && strcmp(argv[1], commands[i].name)) i++;
  const int mpi = i == n || !commands[i].serial;
  if (mpi) MPI_Init(&argc, &argv);
  /* Every HDF5 failure is reported once by gorp, naming the file and dataset; HDF5's own error
   * stack is printed only on request (GORP_HDF5_ERRORS=1), for debugging HDF5 itself. */
  if (!getenv("GORP_HDF5_ERRORS")) H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  int size = 1, local = 1;
  MPI_Comm node;
  if (mpi) {
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) ==
        MPI_SUCCESS) {
      MPI_Comm_size(node, &local);
      MPI_Comm_free(&node);
    }
  }
  backend_threads_init(local);
  int rc = GORP_EUSAGE;
  if (argc < 2) {
    usage(stderr);
  } else if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
    usage(stdout);
    rc = GORP_OK;
  } else if (i == n) {
    fprintf(stderr, "gorp: error: unknown command '%s'\n", argv[1]);
    usage(stderr);
  } else {
    rc = commands[i].fn(argc - 1, argv + 1);
  }
  fflush(stdout);
  fflush(stderr);
  /* One failing rank must not leave the others waiting in a collective. */
  if (rc && size > 1) MPI_Abort(MPI_COMM_WORLD, rc);
  if (mpi) MPI_Finalize();
  return rc;
}
