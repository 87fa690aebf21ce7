/* The gorp subcommands; main.c dispatches argv[1] to one of these. Each returns a GORP_E* code
 * and prints its own usage on bad arguments. */
#ifndef GORP_CMD_H
#define GORP_CMD_H

/* gorp run CONFIG.ini [--set k=v]... (cmd_run.c) */
int cmd_run(int argc, char **argv);
/* Catches SIGTERM/SIGUSR1 for gorp run (checkpoint and exit 75) and unblocks them: called first
 * thing in main, before MPI_Init, so that a signal during start-up is honoured (a launcher may
 * block them until then to close the gap before main). */
int cmd_run_catch_stop_signals(void);
/* gorp import-hf DIR OUT.h5 (cmd_import.c) */
int cmd_import_hf(int argc, char **argv);
/* gorp logits / grad / fit / generate --model M --tokens F ... (cmd_numerics.c) */
int cmd_logits(int argc, char **argv);
int cmd_grad(int argc, char **argv);
int cmd_fit(int argc, char **argv);
int cmd_generate(int argc, char **argv);
/* gorp config CONFIG.ini [--set k=v]... | --schema (cmd_config.c) */
int cmd_config(int argc, char **argv);
/* gorp inspect FILE.h5 [--verify] (cmd_inspect.c) */
int cmd_inspect(int argc, char **argv);
/* gorp pretrain CONFIG.ini [--set k=v]... (cmd_pretrain.c) */
int cmd_pretrain(int argc, char **argv);
/* gorp plan CONFIG.ini [--set k=v]... [--tp N] [--dp N] [--seq T] [--json] (cmd_plan.c) */
int cmd_plan(int argc, char **argv);

#endif
