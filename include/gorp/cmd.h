/* The gorp subcommands; main.c dispatches argv[1] to one of these. Each returns a GORP_E* code
 * and prints its own usage on bad arguments. */
#ifndef GORP_CMD_H
#define GORP_CMD_H

int cmd_run(int argc, char **argv);       /* gorp run CONFIG.ini [--set k=v]...  (cmd_run.c) */
int cmd_import_hf(int argc, char **argv); /* gorp import-hf DIR OUT.h5           (cmd_import.c) */
int cmd_logits(int argc,
               char **argv);         /* gorp logits --model M --tokens F --out O (cmd_numerics.c) */
int cmd_grad(int argc, char **argv); /* gorp grad --model M --tokens F --out O   (cmd_numerics.c) */
int cmd_fit(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_pretrain(int argc, char **argv);
/* gorp pretrain CONFIG.ini [--set k=v]... (cmd_pretrain.c) */ /* gorp inspect FILE.h5
                                                                  [--verify] (cmd_inspect.c) */
/* gorp config CONFIG.ini | --schema (cmd_config.c) */ /* gorp fit --model M --tokens F --steps
                                                          N  (cmd_numerics.c) */

#endif
