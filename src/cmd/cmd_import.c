/* gorp import-hf DIR OUT.h5: converts a Hugging Face LLaMA directory (config.json + safetensors)
 * into a gorp model file, keeping config.json's text in it.
 * Not for: the conversion itself (hf_import.c) or the file format (modelfile.c). */
#include "gorp/cmd.h"
#include "gorp/dist.h"
#include "gorp/err.h"
#include "gorp/hf_import.h"
#include "gorp/modelfile.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

static int import_and_save(model *m, const char *dir, const char *out) {
  char *config_json;
  GORP_CALL(hf_import(m, dir, &config_json));
  const int rc = modelfile_save(m, out, config_json);
  free(config_json);
  return rc;
}

typedef struct import_args {
  const char *dir, *out;
} import_args;

static int import_main(const void *args) {
  const import_args *a = args;
  int size;
  GORP_CALL(dist_world_size(&size));
  /* ranks would race to write the same file */
  if (size > 1) GORP_ERR(GORP_EUSAGE, "import-hf runs on one rank (got %d)", size);
  model m;
  const int rc = import_and_save(&m, a->dir, a->out);
  if (!rc) printf("import-hf: %d tensors, %zu parameters -> %s\n", m.n_tensors, m.n_params, a->out);
  model_free(&m);
  return rc;
}

static const cmd_arg import_table[] = {
    {NULL, CMD_TEXT, offsetof(import_args, dir), "DIR",
     "holds config.json and model.safetensors (or model-*.safetensors and their index.json)", 1},
    {NULL, CMD_TEXT, offsetof(import_args, out), "OUT.h5", "the gorp model file to write", 1},
};

const cmd_spec cmd_import_hf_spec = {
    CMD_SPEC("import-hf",
             "converts a Hugging Face LLaMA directory into a gorp model file (docs/MODELFILE.md)",
             import_table, import_args, import_main),
    .short_help = 1};
