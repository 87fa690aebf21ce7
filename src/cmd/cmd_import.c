/* gorp import-hf DIR OUT.h5: converts a Hugging Face LLaMA directory (config.json + safetensors)
 * into a gorp model file, keeping config.json's text in it. gorp import-gguf FILE.gguf OUT.h5: the
 * same from a llama.cpp GGUF file (dequantized to float32; the model file's hf_config is the one
 * generated from the architecture). Both hold one tensor in memory at a time, never the model.
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

typedef struct import_args {
  const char *src, *out;
} import_args;

/* Both commands: src into the model file out, on one rank. */
static int import_run(const import_args *a, const char *name,
                      int (*import)(const char *, const char *, modelfile_counts *)) {
  int size;
  GORP_CALL(dist_world_size(&size));
  /* ranks would race to write the same file */
  if (size > 1) GORP_ERR(GORP_EUSAGE, "%s runs on one rank (got %d)", name, size);
  modelfile_counts n;
  GORP_CALL(import(a->src, a->out, &n));
  printf("%s: %d tensors, %zu parameters (%zu kept in bf16) -> %s\n", name, n.n_tensors, n.n_values,
         n.n_bf16, a->out);
  return GORP_OK;
}

static int import_hf_main(const void *args) {
  return import_run(args, "import-hf", hf_import);
}

static int import_gguf_main(const void *args) {
  return import_run(args, "import-gguf", gguf_import);
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
