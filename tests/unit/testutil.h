/* Shared helpers of the C unit tests: check counting with a message on failure, capture of
 * stderr (to check error messages), and the closing "N passed, M failed" line.
 * Not for: anything in the gorp library. */
#ifndef GORP_TESTUTIL_H
#define GORP_TESTUTIL_H

#include <stdio.h>

extern int n_pass, n_fail;

/* Counts one check; on failure prints where, the condition and a printf-style explanation. */
#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (cond) {                                                                                    \
      n_pass++;                                                                                    \
    } else {                                                                                       \
      n_fail++;                                                                                    \
      printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                                       \
      printf(__VA_ARGS__);                                                                         \
      printf("\n");                                                                                \
    }                                                                                              \
  } while (0)

/* stderr goes to a temporary file between capture_begin and capture_end. */
void capture_begin(void);
/* Restores stderr and returns what was written to it (malloc'd). */
char *capture_end(void);
/* snprintf into a PATH_MAX buffer; exits when the path does not fit. */
void fmt_path(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Removes a folder and everything below it. */
void rm_tree(const char *dir);
struct gorp_config;
/* Loads a config from text (written to a temporary file) with overrides; 0 on success. */
int config_from_text(struct gorp_config *c, const char *text, char *const *overrides, int n);
/* Prints "N passed, M failed" and returns the process exit code. */
int tests_finish(void);

#endif
