/* The gorp subcommands. Each is a cmd_spec (cmd_args.h): its arguments as a table, the struct
 * they are parsed into, and the function that runs on it. main.c finds argv[1] among them,
 * starts MPI unless the command is serial, parses the rest of argv with cmd_args_parse and runs
 * it; a command never reads argv itself. */
#ifndef GORP_CMD_H
#define GORP_CMD_H

#include "gorp/cmd_args.h"

/* gorp run CONFIG.ini [--set k=v]... [--force-config] (cmd_run.c) */
extern const cmd_spec cmd_run_spec;
/* Catches SIGTERM/SIGUSR1 for gorp run (checkpoint and exit 75) and unblocks them: called first
 * thing in main, before MPI_Init, so that a signal during start-up is honoured (a launcher may
 * block them until then to close the gap before main). */
int cmd_run_catch_stop_signals(void);
/* gorp import-hf DIR OUT.h5, gorp import-gguf FILE.gguf OUT.h5 (cmd_import.c) */
extern const cmd_spec cmd_import_hf_spec, cmd_import_gguf_spec;
/* gorp export-hf MODEL.h5|RUN_DIR OUT_DIR, gorp export-peft RUN_DIR OUT_DIR (cmd_export.c) */
extern const cmd_spec cmd_export_hf_spec, cmd_export_peft_spec;
/* gorp logits / grad / fit / generate --model M --tokens F ... (cmd_numerics.c) */
extern const cmd_spec cmd_logits_spec, cmd_grad_spec, cmd_fit_spec, cmd_generate_spec;
/* gorp config CONFIG.ini [--set k=v]... | --schema (cmd_config.c) */
extern const cmd_spec cmd_config_spec;
/* gorp inspect FILE.h5 [--verify] (cmd_inspect.c) */
extern const cmd_spec cmd_inspect_spec;
/* gorp pretrain CONFIG.ini [--set k=v]... (cmd_pretrain.c) */
extern const cmd_spec cmd_pretrain_spec;
/* gorp plan CONFIG.ini [--set k=v]... [--tp N] [--dp N] [--seq T] [--json] (cmd_plan.c) */
extern const cmd_spec cmd_plan_spec;

#endif
