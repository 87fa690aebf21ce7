/* The state table (state.h): a growing array of entries that own their blocks.
 * Not for: reading or writing them (ckpt.c). */
#include "gorp/state.h"

#include "gorp/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void state_init(state_table *t) {
  *t = (state_table){0};
}

void state_free(state_table *t) {
  for (int i = 0; i < t->n; i++) free(t->e[i].blocks);
  free(t->e);
  *t = (state_table){0};
}

/* A new zeroed entry at the end of t. */
static int add_entry(state_table *t, const char *name, state_entry **e) {
  if (t->n == t->cap) {
    const int cap = t->cap ? 2 * t->cap : 64;
    state_entry *g = realloc(t->e, (size_t)cap * sizeof(*g));
    if (!g) GORP_ERR(GORP_EMEM, "out of memory describing the state (%s)", name);
    t->e = g;
    t->cap = cap;
  }
  *e = &t->e[t->n++];
  **e = (state_entry){0};
  if (snprintf((*e)->name, sizeof((*e)->name), "%s", name) >= (int)sizeof((*e)->name))
    GORP_ERR(GORP_EINPUT, "state entry name '%s' is longer than %d bytes", name,
             STATE_NAME_MAX - 1);
  return GORP_OK;
}

int state_add_tensor(state_table *t, const char *name, state_type type, int ndim,
                     const uint64_t *dims, const state_block *blocks, int n, void *data,
                     state_entry **out) {
  state_entry *e;
  GORP_CALL(add_entry(t, name, &e));
  e->type = type;
  e->data = data;
  e->ndim = ndim;
  e->dims[0] = dims[0];
  e->dims[1] = ndim == 2 ? dims[1] : 1;
  GORP_ALLOC(e->blocks, n ? (size_t)n : 1, "state blocks");
  memcpy(e->blocks, blocks, (size_t)n * sizeof(*blocks));
  e->n_blocks = n;
  if (out) *out = e;
  return GORP_OK;
}

int state_add_whole(state_table *t, const char *name, state_type type, int ndim,
                    const uint64_t *dims, void *data) {
  const state_block b = {.rows = dims[0],
                         .cols = ndim == 2 ? dims[1] : 1,
                         .nr = dims[0],
                         .nc = ndim == 2 ? dims[1] : 1};
  return state_add_tensor(t, name, type, ndim, dims, &b, 1, data, NULL);
}

int state_add_scalar(state_table *t, const char *obj, const char *key, state_type type,
                     void *value) {
  state_entry *e;
  GORP_CALL(add_entry(t, obj, &e));
  snprintf(e->key, sizeof(e->key), "%s", key);
  e->type = type;
  e->data = value;
  return GORP_OK;
}
