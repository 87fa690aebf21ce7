/* A state table: the named tensors and scalars that one process holds of a run's state, each
 * tensor with its logical (unsharded) shape and this rank's blocks of it, after Megatron's
 * sharded_state_dict / ShardedTensor. Each owner of state (the model's LoRA pairs, the
 * optimizers, GORP's bases, the runner's position and results) describes its own entries; a
 * file format (ckpt.h) walks the table without knowing who owns what, in both directions: saving
 * reads the entries' memory, loading writes it.
 * Not for: file I/O or collectives (ckpt.h, h5io.h), the meaning of any one entry. */
#ifndef GORP_STATE_H
#define GORP_STATE_H

#include <stddef.h>
#include <stdint.h>

/* One rank's block of a logical row-major matrix (rows, cols) that starts at element `base` of a
 * tensor: its rows [r0, r0 + nr) x columns [c0, c0 + nc), held in memory row-major (nr x nc)
 * from element `mem` of the entry's data. A 2-D tensor of shape (rows, cols) has one block at
 * base 0; a 1-D tensor that concatenates matrices (an optimizer's flattened moments) has one
 * block per matrix. */
typedef struct state_block {
  uint64_t base, rows, cols;
  uint64_t r0, nr, c0, nc;
  uint64_t mem;
  int split; /* 1: a shard (the TP group's blocks tile the matrix); 0: every rank holds it whole */
} state_block;

typedef enum {
  STATE_FLOAT,  /* tensor of float32 */
  STATE_DOUBLE, /* tensor of float64 */
  STATE_INT,    /* scalar int, stored as int64 */
  STATE_LONG,   /* scalar long, stored as int64 */
  STATE_I64,    /* scalar int64_t */
  STATE_U64     /* scalar uint64_t, stored as int64 (a counter: the same bits) */
} state_type;

enum { STATE_NAME_MAX = 320, STATE_KEY_MAX = 32 };

typedef struct state_entry {
  char name[STATE_NAME_MAX]; /* tensor: its path ("/optim/lora/exp_avg"); scalar: its object's */
  char key[STATE_KEY_MAX];   /* scalar: its attribute name; "" for a tensor */
  state_type type;
  void *data; /* tensor: this rank's elements; scalar: the value */
  /* tensors: */
  int ndim;
  uint64_t dims[2];    /* the logical shape (dims[1] = 1 when ndim 1) */
  state_block *blocks; /* this rank's part, increasing in the tensor and in memory */
  int n_blocks;
  /* Memory other than the block's row-major (nr x nc), float tensors of one block only: */
  int transposed; /* 1: memory holds the block transposed, (nc x nr) row-major */
  /* Columns in use of a matrix that has room for dims[1] (a basis that grows): when not NULL the
   * stored tensor is (dims[0], *live_cols), read from an earlier scalar entry that points at the
   * same int, and memory keeps a row stride of dims[1] (the rest zeroed when loading); a tensor
   * with no columns in use is not stored. */
  int *live_cols;
} state_entry;

typedef struct state_table {
  state_entry *e;
  int n, cap;
} state_table;

/* An empty table (nothing allocated until the first entry). */
void state_init(state_table *t);
void state_free(state_table *t);

/* Adds a tensor of type STATE_FLOAT or STATE_DOUBLE named name, logical shape dims (ndim 1 or
 * 2), this rank's n blocks of it (copied) in data. out (may be NULL) receives the entry, to set
 * transposed or live_cols; it stays valid until the next entry is added. */
int state_add_tensor(state_table *t, const char *name, state_type type, int ndim,
                     const uint64_t *dims, const state_block *blocks, int n, void *data,
                     state_entry **out);
/* A tensor every rank holds whole (one block covering dims). */
int state_add_whole(state_table *t, const char *name, state_type type, int ndim,
                    const uint64_t *dims, void *data);
/* A scalar attribute key of object obj ("/" the root), of an integer type, at value. */
int state_add_scalar(state_table *t, const char *obj, const char *key, state_type type,
                     void *value);

#endif
