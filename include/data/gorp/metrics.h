/* Scoring of decoded predictions against labels, as the CL_Benchmark scores them: exact match
 * after normalisation (the upstream normalize_answer: lower-case, drop punctuation, collapse white
 * space), and whether a prediction is one of the task's options (the in-list rate).
 * Not for: accuracy matrices or AP/BWT/FWT (the cl runner and postprocess/). */
#ifndef GORP_METRICS_H
#define GORP_METRICS_H

/* Lower-cases ASCII letters, removes ASCII punctuation (Python's string.punctuation), collapses
 * runs of white space to one space and strips both ends. *out is malloc'd (free() it). */
int metrics_normalize(const char *s, char **out);
/* 1 when prediction and label are equal after normalisation, else 0. Allocates nothing. */
int metrics_exact_match(const char *prediction, const char *label);
/* 1 when the normalised prediction equals one of the n_labels normalised labels, else 0. */
int metrics_in_list(const char *prediction, char *const *labels, int n_labels);

#endif
