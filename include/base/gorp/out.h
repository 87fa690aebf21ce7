/* The job's output on standard output: progress lines, tables and summaries that every rank of an
 * MPI job computes alike are printed once, by world rank 0 (the other ranks' stdout stays open
 * and unused, so a library or a debugging print on them is not silently lost). A process that
 * has not started MPI (gorp inspect, the unit tests) is rank 0.
 * Not for: errors and warnings (err.h: every rank reports its own on stderr), or what a
 * one-process command writes as its data (gorp generate's ids, gorp config's text: plain stdio). */
#ifndef GORP_OUT_H
#define GORP_OUT_H

/* printf on world rank 0; nothing on the other ranks. */
void out_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* fflush(stdout) on world rank 0: a progress line reaches a log before the next step. */
void out_flush(void);

#endif
