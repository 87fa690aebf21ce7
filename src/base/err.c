/* Error reporting used by GORP_ERR / GORP_CALL (see err.h). */
#include "gorp/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether the source locations are printed: a user reads the message; a developer (or a test
 * log) sets GORP_DEBUG=1 for the "at file:line in func: call" lines. Read once. */
static int show_origin(void) {
  static int show = -1;
  if (show < 0) {
    const char *v = getenv("GORP_DEBUG");
    show = v && *v && strcmp(v, "0");
  }
  return show;
}

int gorp_error(const char *file, int line, const char *func, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("gorp: error: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  if (show_origin()) fprintf(stderr, "  at %s:%d in %s\n", file, line, func);
  va_end(ap);
  return code;
}

void gorp_trace(const char *file, int line, const char *func, const char *call) {
  if (show_origin()) fprintf(stderr, "  at %s:%d in %s: %s\n", file, line, func, call);
}
