/* The command-line parser of every subcommand (see cmd_args.h): getopt_long over a cmd_spec's
 * table, values written by offset into the command's argument struct, and the help and usage
 * text made from the same table. */
#include "gorp/cmd_args.h"
#include "gorp/err.h"
#include "gorp/out.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* getopt_long's code for --help (and -h where the spec allows it); a table entry i is 256 + i,
 * past every character code. */
enum { CMD_HELP = 'h', CMD_ENTRY = 256 };

static void *field(void *args, const cmd_arg *a) {
  return (char *)args + a->offset;
}

void cmd_args_usage(const cmd_spec *s, char *buf, size_t size) {
  size_t len = (size_t)snprintf(buf, size, "gorp %s", s->name);
  int optional = 0; /* options that are not required: summed up as [OPTION]... */
  for (int i = 0; i < s->n_args && len < size; i++) {
    const cmd_arg *a = &s->args[i];
    if (a->name && !a->required)
      optional = 1;
    else if (a->name)
      len += (size_t)snprintf(buf + len, size - len, " --%s %s", a->name, a->value);
    else
      len += (size_t)snprintf(buf + len, size - len, " %s%s%s", a->required ? "" : "[", a->value,
                              a->required ? "" : "]");
  }
  if (optional && len < size) snprintf(buf + len, size - len, " [OPTION]...");
}

int cmd_args_usage_error(const cmd_spec *s, const char *why) {
  char usage[512];
  cmd_args_usage(s, usage, sizeof(usage));
  GORP_ERR(GORP_EUSAGE, "usage: %s (%s; gorp %s --help lists the options)", usage, why, s->name);
}

/* "--name VALUE" or "CONFIG.ini": the left column of --help. */
static void arg_label(const cmd_arg *a, char *buf, size_t size) {
  if (!a->name)
    snprintf(buf, size, "%s", a->value);
  else if (a->type == CMD_FLAG)
    snprintf(buf, size, "--%s", a->name);
  else
    snprintf(buf, size, "--%s %s", a->name, a->value);
}

/* On world rank 0 only: gorp run --help under mpirun prints it once. */
static void print_help(const cmd_spec *s) {
  char usage[512], label[96];
  cmd_args_usage(s, usage, sizeof(usage));
  out_printf("usage: %s\n%s\n\n", usage, s->summary);
  int width = (int)strlen(s->short_help ? "-h, --help" : "--help");
  for (int i = 0; i < s->n_args; i++) {
    arg_label(&s->args[i], label, sizeof(label));
    if ((int)strlen(label) > width) width = (int)strlen(label);
  }
  for (int i = 0; i < s->n_args; i++) {
    arg_label(&s->args[i], label, sizeof(label));
    out_printf("  %-*s  %s%s\n", width, label, s->args[i].help,
               s->args[i].type == CMD_LIST ? " (repeatable, applied in order)" : "");
  }
  out_printf("  %-*s  print this help and exit\n", width, s->short_help ? "-h, --help" : "--help");
}

/* An integer option's value: any int (CMD_INT) or a count in [1, 1e9] (CMD_COUNT). */
static int parse_int(const cmd_spec *s, const cmd_arg *a, const char *v, int *out) {
  const int count = a->type == CMD_COUNT;
  char *end;
  errno = 0;
  const long x = strtol(v, &end, 10);
  const long lo = count ? 1L : -2147483647L, hi = count ? 1000000000L : 2147483647L;
  if (errno || end == v || *end || x < lo || x > hi)
    GORP_ERR(GORP_EUSAGE, "%s: --%s expects %s, got '%s'", s->name, a->name,
             count ? "a positive integer" : "an integer", v);
  *out = (int)x;
  return GORP_OK;
}

static int parse_float(const cmd_spec *s, const cmd_arg *a, const char *v, float *out) {
  char *end;
  errno = 0;
  *out = strtof(v, &end);
  if (errno || end == v || *end)
    GORP_ERR(GORP_EUSAGE, "%s: --%s expects a number, got '%s'", s->name, a->name, v);
  return GORP_OK;
}

/* Stores one value of entry a (v: NULL for a flag); lists have room for argc values. */
static int store(const cmd_spec *s, const cmd_arg *a, const char *v, void *args, int argc) {
  void *f = field(args, a);
  switch (a->type) {
  case CMD_FLAG:
    *(int *)f = 1;
    return GORP_OK;
  case CMD_TEXT:
    *(const char **)f = v;
    return GORP_OK;
  case CMD_LIST: {
    cmd_list *l = f;
    if (!l->items) GORP_ALLOC(l->items, argc, "the values of a repeatable option");
    l->items[l->n++] = (char *)v;
    return GORP_OK;
  }
  case CMD_INT:
  case CMD_COUNT:
    return parse_int(s, a, v, f);
  case CMD_FLOAT:
    return parse_float(s, a, v, f);
  }
  GORP_ERR(GORP_ELIB, "%s: argument %s has no type", s->name, a->name ? a->name : a->value);
}

/* The next positional entry after entry `after` (-1: the first), or -1. */
static int next_positional(const cmd_spec *s, int after) {
  for (int i = after + 1; i < s->n_args; i++)
    if (!s->args[i].name) return i;
  return -1;
}

/* Whether argv element `arg` spells table option `name` in full (getopt_long also accepts any
 * unique prefix, which gorp never did). */
static int spelled_out(const char *arg, const char *name) {
  const size_t n = strlen(name);
  return !strncmp(arg, "--", 2) && !strncmp(arg + 2, name, n) &&
         (arg[2 + n] == '\0' || arg[2 + n] == '=');
}

/* The getopt_long loop; seen[i] counts the values of entry i. */
static int parse_into(const cmd_spec *s, const struct option *longopts, int argc, char **argv,
                      void *args, int *seen, int *help) {
  /* "-": a positional argument comes back in order as code 1 (no permutation of argv, whatever
   * POSIXLY_CORRECT says); ":": a missing value comes back as ':', not '?' */
  const char *optstring = s->short_help ? "-:h" : "-:";
  int pos = next_positional(s, -1), code;
  opterr = 0;
  optind = 0; /* glibc: a full restart of getopt's state */
  for (;;) {
    const int at = optind ? optind : 1; /* the argv element getopt_long looks at next */
    code = getopt_long(argc, argv, optstring, longopts, NULL);
    if (code == -1) break;
    const char *arg = at < argc ? argv[at] : "";
    if (code == CMD_HELP) {
      print_help(s);
      *help = 1;
      return GORP_OK;
    }
    if (code == ':') GORP_ERR(GORP_EUSAGE, "%s: option %s needs a value", s->name, arg);
    if (code == '?' && strchr(arg, '='))
      for (int i = 0; i < s->n_args; i++)
        if (s->args[i].name && s->args[i].type == CMD_FLAG && spelled_out(arg, s->args[i].name))
          GORP_ERR(GORP_EUSAGE, "%s: option --%s takes no value (got '%s')", s->name,
                   s->args[i].name, arg);
    int entry = code - CMD_ENTRY;
    if (code != 1 && (entry < 0 || entry >= s->n_args || !spelled_out(arg, s->args[entry].name)))
      GORP_ERR(GORP_EUSAGE, "%s: unexpected argument '%s': no such option (gorp %s --help)",
               s->name, arg, s->name);
    if (code == 1) { /* a positional argument */
      if (pos < 0) GORP_ERR(GORP_EUSAGE, "%s: unexpected argument '%s'", s->name, optarg);
      entry = pos;
      pos = next_positional(s, pos);
    }
    GORP_CALL(store(s, &s->args[entry], optarg, args, argc));
    seen[entry]++;
  }
  for (int i = optind; i < argc; i++) { /* after "--": positional arguments only */
    if (pos < 0) GORP_ERR(GORP_EUSAGE, "%s: unexpected argument '%s'", s->name, argv[i]);
    GORP_CALL(store(s, &s->args[pos], argv[i], args, argc));
    seen[pos]++;
    pos = next_positional(s, pos);
  }
  for (int i = 0; i < s->n_args; i++)
    if (s->args[i].required && !seen[i]) {
      char label[96], why[128];
      arg_label(&s->args[i], label, sizeof(label));
      snprintf(why, sizeof(why), "%s is missing", label);
      return cmd_args_usage_error(s, why);
    }
  return GORP_OK;
}

int cmd_args_parse(const cmd_spec *s, int argc, char **argv, void **args, int *help) {
  *help = 0;
  *args = calloc(1, s->args_size ? s->args_size : 1);
  struct option *longopts = calloc((size_t)s->n_args + 2, sizeof(*longopts));
  int *seen = calloc((size_t)s->n_args + 1, sizeof(*seen));
  int rc = GORP_OK;
  if (!*args || !longopts || !seen)
    rc = GORP_ERROR(GORP_EMEM, "out of memory parsing the arguments of gorp %s", s->name);
  if (!rc) {
    if (s->defaults) memcpy(*args, s->defaults, s->args_size);
    int n = 0; /* the table's options, then --help, then getopt's all-zero end */
    for (int i = 0; i < s->n_args; i++)
      if (s->args[i].name)
        longopts[n++] = (struct option){
            s->args[i].name, s->args[i].type == CMD_FLAG ? no_argument : required_argument, NULL,
            CMD_ENTRY + i};
    longopts[n] = (struct option){"help", no_argument, NULL, CMD_HELP};
    rc = parse_into(s, longopts, argc, argv, *args, seen, help);
  }
  free(longopts);
  free(seen);
  if (rc) {
    cmd_args_free(s, *args);
    *args = NULL;
  }
  return rc;
}

void cmd_args_free(const cmd_spec *s, void *args) {
  if (!args) return;
  for (int i = 0; i < s->n_args; i++)
    if (s->args[i].type == CMD_LIST) free(((cmd_list *)field(args, &s->args[i]))->items);
  free(args);
}
