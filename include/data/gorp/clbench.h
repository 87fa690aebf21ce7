/* Loader for one CL_Benchmark dataset in its upstream layout:
 * <root>/<TaskType>/<dataset>/{train,test,labels}.json plus the instruction of its task type from
 * instruction_config.json. Every item is validated on load, so later stages can trust the strings:
 * valid UTF-8, known labels, non-empty splits. The runner loads one dataset at a time.
 * Not for: task orders, prompt text (prompt.h), tokenisation, batching or the synthetic suite. */
#ifndef GORP_CLBENCH_H
#define GORP_CLBENCH_H

enum { CL_NAME_MAX = 64 }; /* task type and dataset folder names, NUL included */

/* Label "-" in test.json marks an item without a gold label (upstream MNLI): kept, never correct.
 */
#define CL_LABEL_NONE "-"

typedef struct cl_item {
  char *sentence;
  char *label;
} cl_item;

typedef struct cl_task {
  char task_type[CL_NAME_MAX]; /* e.g. "TC" (the folder above the dataset) */
  char dataset[CL_NAME_MAX];   /* e.g. "agnews" */
  char *instruction; /* instruction_config.json[task_type][0].instruction; NULL for COPA */
  char **labels;     /* labels.json, in file order (the Option: line order) */
  int n_labels;
  cl_item *train;
  int n_train;
  cl_item *test;
  int n_test;
  int n_test_unlabelled; /* test items labelled CL_LABEL_NONE (kept, never counted correct) */
} cl_task;

/* Finds <root>/<TaskType>/<dataset>/ by scanning the task-type folders of root (an error names
 * the dataset and root when it is absent or in more than one), then loads train.json, test.json,
 * labels.json and the instruction from instructions_path. Every failure is GORP_EINPUT (GORP_EMEM
 * for memory) naming the file and the item index or byte offset; *t is then left empty. */
int clbench_load(cl_task *t, const char *root, const char *dataset, const char *instructions_path);
void clbench_free(cl_task *t);
/* Removes the test items labelled CL_LABEL_NONE (data.unlabelled = drop); returns how many. */
int clbench_drop_unlabelled(cl_task *t);

#endif
