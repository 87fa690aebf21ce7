/* Error reporting used by GORP_ERR / GORP_CALL (see err.h). */
#include "gorp/err.h"

#include <stdarg.h>
#include <stdio.h>

int gorp_error(const char *file, int line, const char *func, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("gorp: error: ", stderr);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n  at %s:%d in %s\n", file, line, func);
  va_end(ap);
  return code;
}

void gorp_trace(const char *file, int line, const char *func, const char *call) {
  fprintf(stderr, "  at %s:%d in %s: %s\n", file, line, func, call);
}
