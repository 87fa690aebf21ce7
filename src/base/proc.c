/* Process facts (see proc.h). */
#include "gorp/proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double proc_peak_rss_mb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1.0;
  char line[256];
  double kb = -1.0;
  while (kb < 0 && fgets(line, sizeof(line), f))
    if (!strncmp(line, "VmHWM:", 6)) kb = strtod(line + 6, NULL);
  fclose(f);
  return kb < 0 ? -1.0 : kb / 1024.0;
}

double proc_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
