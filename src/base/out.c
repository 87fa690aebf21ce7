/* Printing once per job (see out.h). */
#include "gorp/out.h"

#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>

/* Whether this process is world rank 0 (or runs without MPI). Asked on every call rather than
 * set once: a serial command never starts MPI, and the question costs nanoseconds next to the
 * printing. */
static int out_is_root(void) {
  int started = 0, finished = 0, rank = 0;
  if (MPI_Initialized(&started) || !started || MPI_Finalized(&finished) || finished) return 1;
  return MPI_Comm_rank(MPI_COMM_WORLD, &rank) || rank == 0;
}

void out_printf(const char *fmt, ...) {
  if (!out_is_root()) return;
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
}

void out_flush(void) {
  if (out_is_root()) fflush(stdout);
}
