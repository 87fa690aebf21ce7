/* The one command-line parser of every gorp subcommand (getopt_long underneath). A command
 * describes its arguments in a cmd_spec: a table of long options and positional arguments, each
 * bound by offset to a field of the command's own argument struct (FFmpeg's AVOption tables are
 * the model), so that `gorp COMMAND --help`, the usage line of an error and the parsing come from
 * one description. Every command thereby takes --help (usage on stdout, exit 0); a usage error
 * (an unknown option, a missing or malformed value, a missing or surplus positional argument)
 * is GORP_EUSAGE with a message naming the argument. Options are long only and spelled out in
 * full (no abbreviations); `--name value` and `--name=value` are the same; `--` ends the options.
 * Not for: checks between arguments or against files (the command's own code), or the choice of
 * the command (main.c). */
#ifndef GORP_CMD_ARGS_H
#define GORP_CMD_ARGS_H

#include <stddef.h>

typedef enum cmd_arg_type {
  CMD_FLAG,  /* --name: int set to 1 */
  CMD_TEXT,  /* --name VALUE, or a positional argument: const char * (into argv) */
  CMD_LIST,  /* --name VALUE, repeatable: cmd_list, in the order given */
  CMD_INT,   /* --name INTEGER: int, any sign */
  CMD_COUNT, /* --name N: int in [1, 1e9] */
  CMD_FLOAT  /* --name NUMBER: float */
} cmd_arg_type;

/* The values of a repeatable option (--set a=1 --set b=2), pointers into argv. */
typedef struct cmd_list {
  char **items;
  int n;
} cmd_list;

typedef struct cmd_arg {
  const char *name;  /* the long option without "--"; NULL: the next positional argument */
  cmd_arg_type type; /* a positional argument is CMD_TEXT */
  size_t offset;     /* of its field in the command's argument struct (offsetof) */
  const char *value; /* the value's (or the positional argument's) name in the usage: "N" */
  const char *help;  /* one line for --help */
  int required;      /* 1: a usage error when absent */
} cmd_arg;

typedef struct cmd_spec {
  const char *name;    /* argv[1]: "run" */
  const char *summary; /* what it does, one line (gorp --help and its own --help) */
  const cmd_arg *args; /* its n_args options and positional arguments, as --help lists them */
  int n_args;
  size_t args_size;             /* sizeof its argument struct */
  const void *defaults;         /* the struct before parsing (NULL: all zero) */
  int (*run)(const void *args); /* the command, given the parsed struct */
  int serial;     /* 1: one process reading files, no MPI (starts in milliseconds, not ~0.3 s) */
  int short_help; /* 1: -h asks for help too (import-hf had it; no command gains a short option) */
} cmd_spec;

/* The fields of a cmd_spec every command sets: its name, summary, table, argument struct and
 * function; defaults, serial and short_help follow as designated initializers when needed. */
#define CMD_SPEC(NAME, SUMMARY, TABLE, ARGS_TYPE, RUN)                                             \
  .name = (NAME), .summary = (SUMMARY), .args = (TABLE),                                           \
  .n_args = (int)(sizeof(TABLE) / sizeof((TABLE)[0])), .args_size = sizeof(ARGS_TYPE),             \
  .run = (RUN)

/* The --set option of every command that reads a config (config_load's overrides): one
 * spelling and one meaning everywhere. FIELD is a cmd_list of ARGS_TYPE. */
#define CMD_ARG_SET(ARGS_TYPE, FIELD)                                                              \
  { "set", CMD_LIST, offsetof(ARGS_TYPE, FIELD), "section.key=value", "override a config key", 0 }

/* Parses argv[1..argc) (argv[0] is the command's name) into a new argument struct *args, to be
 * released with cmd_args_free (also after an error). On --help prints the command's help on
 * stdout (world rank 0) and sets *help to 1; nothing else is parsed then. */
int cmd_args_parse(const cmd_spec *s, int argc, char **argv, void **args, int *help);
void cmd_args_free(const cmd_spec *s, void *args);
/* "gorp NAME CONFIG.ini [OPTION]..." (required options and positional arguments in full) into
 * buf; what `usage:` lines show. */
void cmd_args_usage(const cmd_spec *s, char *buf, size_t size);
/* A usage error of a check the table cannot express (config's CONFIG.ini or --schema): prints
 * "usage: <the usage line> (<why>)" and returns GORP_EUSAGE. */
int cmd_args_usage_error(const cmd_spec *s, const char *why);

#endif
