/* gorp import-hf DIR OUT.h5: converts a Hugging Face LLaMA directory (config.json + safetensors)
 * into a gorp model file, keeping config.json's text in it. gorp import-gguf FILE.gguf OUT.h5: the
 * same from a llama.cpp GGUF file (dequantized to float32; the model file's hf_config is the one
 * generated from the architecture).
 * Not for: the conversions themselves (hf_import.c, gguf_import.c) or the file format
 * (modelfile.c). */
#include "gorp/cmd.h"
#include "gorp/dist.h"
#include "gorp/err.h"
#include "gorp/gguf.h"
#include "gorp/hf_import.h"
#include "gorp/modelfile.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

static int import_hf_and_save(model *m, const char *dir, const char *out) {
  char *config_json;
  GORP_CALL(hf_import(m, dir, &config_json));
  const int rc = modelfile_save(m, out, config_json);
  free(config_json);
  return rc;
}

static int import_gguf_and_save(model *m, const char *file, const char *out) {
  GORP_CALL(gguf_import(m, file));
  return modelfile_save(m, out, NULL);
}

typedef struct import_args {
  const char *src, *out;
} import_args;

/* Both commands: src into the model file out, on one rank. */
static int import_run(const import_args *a, const char *name,
                      int (*import_and_save)(model *, const char *, const char *)) {
  int size;
  GORP_CALL(dist_world_size(&size));
  /* ranks would race to write the same file */
  if (size > 1) GORP_ERR(GORP_EUSAGE, "%s runs on one rank (got %d)", name, size);
  model m;
  const int rc = import_and_save(&m, a->src, a->out);
  if (!rc)
    printf("%s: %d tensors, %zu parameters (%zu kept in bf16) -> %s\n", name, m.n_tensors,
           m.n_params + m.n_params16, m.n_params16, a->out);
  model_free(&m);
  return rc;
}

static int import_hf_main(const void *args) {
  return import_run(args, "import-hf", import_hf_and_save);
}

static int import_gguf_main(const void *args) {
  return import_run(args, "import-gguf", import_gguf_and_save);
}

static const cmd_arg import_hf_table[] = {
    {NULL, CMD_TEXT, offsetof(import_args, src), "DIR",
     "holds config.json and model.safetensors (or model-*.safetensors and their index.json)", 1},
    {NULL, CMD_TEXT, offsetof(import_args, out), "OUT.h5", "the gorp model file to write", 1},
};

const cmd_spec cmd_import_hf_spec = {
    CMD_SPEC("import-hf",
             "converts a Hugging Face LLaMA directory into a gorp model file (docs/MODELFILE.md)",
             import_hf_table, import_args, import_hf_main),
    .short_help = 1};

static const cmd_arg import_gguf_table[] = {
    {NULL, CMD_TEXT, offsetof(import_args, src), "FILE.gguf",
     "a llama.cpp model file (GGUF v2/v3, llama; F32, F16, BF16, Q8_0, Q4_0 or Q4_1 tensors)", 1},
    {NULL, CMD_TEXT, offsetof(import_args, out), "OUT.h5", "the gorp model file to write", 1},
};

const cmd_spec cmd_import_gguf_spec = {
    CMD_SPEC("import-gguf",
             "converts a llama.cpp GGUF file into a gorp model file (float32; docs/MODELFILE.md)",
             import_gguf_table, import_args, import_gguf_main)};
