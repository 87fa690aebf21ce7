/* The check that every rank of an MPI job runs one config (see config_dist.h). */
#include "gorp/config_dist.h"

#include "gorp/err.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes of one rank's note on its differing config key. */
enum { CONFIG_WHAT = 256 };

/* For a rank whose config differs from rank 0's: "key = value (rank 0: value)" of its first
 * differing key, into out (a key rank 0 lacks shows "(rank 0: none)"). */
static void first_change(const config_change *ch, void *arg) {
  char *out = arg;
  if (out[0]) return;
  snprintf(out, CONFIG_WHAT, "%s = %.*s (rank 0: %.*s)", ch->key, ch->now_len, ch->now,
           ch->was ? ch->was_len : 4, ch->was ? ch->was : "none");
}

/* Every rank must run the same config: ranks launched with another --set (or another file, or
 * another run.out_dir, which deadlocked inside the collective H5Fcreate) would otherwise train
 * their shards differently or wait for each other forever. The full hash (every key, paths
 * canonical) is compared before anything else is collective. On a mismatch each rank compares its
 * text with rank 0's and names its first differing key, rank 0 gathers and lists them, and every
 * rank fails once all have printed (the first to return ends the job with MPI_Abort, as any
 * failure on one rank does, allocation failures here included). */
int config_check_same_on_ranks(const gorp_config *c) {
  int rank = 0, size = 1;
  GORP_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  GORP_MPI(MPI_Comm_size(MPI_COMM_WORLD, &size));
  if (size == 1) return GORP_OK;
  const uint64_t mine = config_hash(c);
  uint64_t range[2] = {mine, ~mine}; /* max and ~min over the ranks */
  GORP_MPI(MPI_Allreduce(MPI_IN_PLACE, range, 2, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD));
  if (range[0] == ~range[1]) return GORP_OK;
  char *text = NULL, *own = NULL, *what = NULL;
  long len = 0;
  if (rank == 0) {
    GORP_CALL(config_to_text(c, &text));
    len = (long)strlen(text) + 1;
  }
  GORP_MPI(MPI_Bcast(&len, 1, MPI_LONG, 0, MPI_COMM_WORLD));
  if (rank != 0) GORP_ALLOC(text, len, "rank 0's config text");
  GORP_MPI(MPI_Bcast(text, (int)len, MPI_CHAR, 0, MPI_COMM_WORLD));
  GORP_CALL(config_to_text(c, &own));
  char mine_what[CONFIG_WHAT] = "";
  if (rank != 0 && !config_text_diff(own, text, first_change, mine_what) && strcmp(own, text))
    snprintf(mine_what, sizeof(mine_what), "a key rank 0 does not have");
  free(own);
  free(text);
  if (rank == 0) GORP_ALLOC(what, (size_t)size * CONFIG_WHAT, "the ranks' config differences");
  GORP_MPI(
      MPI_Gather(mine_what, CONFIG_WHAT, MPI_CHAR, what, CONFIG_WHAT, MPI_CHAR, 0, MPI_COMM_WORLD));
  if (rank == 0) {
    char list[1024] = "";
    int n = 0;
    for (int r = 1; r < size; r++) {
      const char *w = what + (size_t)r * CONFIG_WHAT;
      const size_t used = strlen(list);
      if (!w[0]) continue;
      n++;
      snprintf(list + used, sizeof(list) - used, "\n  rank %d: %.*s", r, CONFIG_WHAT, w);
    }
    free(what);
    GORP_ERROR(GORP_EINPUT,
               "the ranks run different configs (every rank must get the same config file and "
               "--set options): %d of %d rank(s) differ from rank 0, each shown with its first "
               "differing key:%s",
               n, size, list);
  } else {
    GORP_ERROR(GORP_EINPUT, "rank %d %s%s (rank 0 lists every rank that differs)", rank,
               mine_what[0] ? "runs another config than rank 0: "
                            : "runs rank 0's config, another rank does not",
               mine_what);
  }
  GORP_MPI(MPI_Barrier(MPI_COMM_WORLD));
  return GORP_EINPUT;
}
