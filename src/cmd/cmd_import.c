/* gorp import-hf DIR OUT.h5: converts a Hugging Face LLaMA directory (config.json + safetensors)
 * into a gorp model file, keeping config.json's text in it.
 * Not for: the conversion itself (hf_import.c) or the file format (modelfile.c). */
#include "gorp/cmd.h"
#include "gorp/err.h"
#include "gorp/hf_import.h"
#include "gorp/modelfile.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *usage = "usage: gorp import-hf DIR OUT.h5\n"
                           "  DIR holds config.json and model.safetensors (or sharded\n"
                           "  model-*.safetensors with model.safetensors.index.json)\n";

static int import_and_save(model *m, const char *dir, const char *out) {
  char *config_json;
  GORP_CALL(hf_import(m, dir, &config_json));
  const int rc = modelfile_save(m, out, config_json);
  free(config_json);
  return rc;
}

int cmd_import_hf(int argc, char **argv) {
  if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
    fputs(usage, stdout);
    return GORP_OK;
  }
  if (argc != 3) {
    fputs(usage, stderr);
    GORP_ERR(GORP_EUSAGE, "import-hf takes a directory and an output file");
  }
  int size;
  GORP_MPI(MPI_Comm_size(MPI_COMM_WORLD, &size));
  /* ranks would race to write the same file */
  if (size > 1) GORP_ERR(GORP_EUSAGE, "import-hf runs on one rank (got %d)", size);
  model m;
  const int rc = import_and_save(&m, argv[1], argv[2]);
  if (!rc)
    printf("import-hf: %d tensors, %zu parameters -> %s\n", m.n_tensors, m.n_params, argv[2]);
  model_free(&m);
  return rc;
}
