/* The gorp command: an MPI program (also runs as a singleton without mpirun) that dispatches to
 * one subcommand; a serial one (gorp inspect) runs without MPI. A failure on any rank ends the
 * whole job with the failing rank's message.
 * Not for: reading a command's arguments (cmd_args.c, from the command's cmd_spec). */
#include "gorp/backend.h"
#include "gorp/cmd.h"
#include "gorp/err.h"
#include "gorp/version.h"

#include <hdf5.h>
#include <mpi.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* The order of gorp --help. */
static const cmd_spec *const commands[] = {
    &cmd_run_spec,         &cmd_import_hf_spec, &cmd_import_gguf_spec, &cmd_logits_spec,
    &cmd_grad_spec,        &cmd_pretrain_spec,  &cmd_inspect_spec,     &cmd_config_spec,
    &cmd_fit_spec,         &cmd_generate_spec,  &cmd_plan_spec,        &cmd_export_hf_spec,
    &cmd_export_peft_spec,
};

static void usage(FILE *f) {
  char line[512];
  fprintf(f, "usage: gorp COMMAND [ARGUMENT]...\n       gorp --help | --version\ncommands:\n");
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
    cmd_args_usage(commands[i], line, sizeof(line));
    fprintf(f, "  %s\n      %s\n", line, commands[i]->summary);
  }
  fprintf(f, "gorp COMMAND --help lists a command's arguments and options.\n");
}

/* Parses the command's arguments into its struct and runs it (or prints its --help). */
static int run_command(const cmd_spec *cmd, int argc, char **argv) {
  void *args;
  int help;
  int rc = cmd_args_parse(cmd, argc, argv, &args, &help);
  if (!rc && !help) rc = cmd->run(args);
  cmd_args_free(cmd, args);
  return rc;
}

int main(int argc, char **argv) {
  backend_blas_core_init(argv); /* may start the program again with the right BLAS kernels */
  /* stdout to a file or pipe (a Slurm log) is block-buffered by default: a progress line would
   * show minutes late; line by line costs nothing at gorp's rate of printing */
  setvbuf(stdout, NULL, _IOLBF, 0);
  /* before MPI_Init, which takes ~0.3 s: a signal to gorp run is never lost at start-up */
  if (argc >= 2 && !strcmp(argv[1], "run") && cmd_run_catch_stop_signals()) return GORP_ELIB;
  const cmd_spec *cmd = NULL;
  for (size_t i = 0; argc >= 2 && !cmd && i < sizeof(commands) / sizeof(commands[0]); i++)
    if (!strcmp(argv[1], commands[i]->name)) cmd = commands[i];
  const int mpi = !cmd || !cmd->serial;
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
  } else if (!strcmp(argv[1], "--version")) {
    printf("%s\n", gorp_version());
    rc = GORP_OK;
  } else if (!cmd) {
    fprintf(stderr, "gorp: error: unknown command '%s'\n", argv[1]);
    usage(stderr);
  } else {
    rc = run_command(cmd, argc - 1, argv + 1);
  }
  fflush(stdout);
  fflush(stderr);
  /* One failing rank must not leave the others waiting in a collective. */
  if (rc && size > 1) MPI_Abort(MPI_COMM_WORLD, rc);
  if (mpi) MPI_Finalize();
  return rc;
}
