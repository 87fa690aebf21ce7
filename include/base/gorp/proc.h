/* Facts about this process that commands report: its peak resident memory and a clock.
 * Not for: machine facts (core counts: backend.h). */
#ifndef GORP_PROC_H
#define GORP_PROC_H

/* This process's peak resident memory in MB: VmHWM of /proc/self/status, or -1. Not getrusage's
 * ru_maxrss: Linux carries the spawning process's high-water mark across exec into it, so gorp
 * started from the Python harness (torch loaded) reported about 210 MB it never used. */
double proc_peak_rss_mb(void);

/* Seconds on the monotonic clock (for durations: never steps with the wall clock). */
double proc_now_s(void);

#endif
