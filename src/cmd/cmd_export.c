/* gorp export-hf MODEL.h5|RUN_DIR OUT_DIR and gorp export-peft RUN_DIR OUT_DIR [--task T]: a gorp
 * model as a Hugging Face transformers folder, a run's LoRA pairs as PEFT adapters on its base
 * (docs/EXPORT.md). Serial: one process reading and writing files.
 * Not for: the export itself (hf_export.c) or the formats (safetensors_write.c, modelfile.c). */
#include "gorp/cmd.h"
#include "gorp/err.h"
#include "gorp/hf_export.h"

#include <stddef.h>
#include <stdint.h>

typedef struct export_args {
  const char *src, *out, *tokenizer, *task;
  int force;
  float max_shard_gb;
} export_args;

static const export_args export_defaults = {.max_shard_gb = 5.0f};

static int export_opts(const export_args *a, hf_export_opts *o) {
  if (!(a->max_shard_gb > 0))
    GORP_ERR(GORP_EUSAGE, "--max-shard-gb must be a positive number of GB, got %g",
             (double)a->max_shard_gb);
  *o = (hf_export_opts){(uint64_t)((double)a->max_shard_gb * 1e9), a->force, a->tokenizer};
  if (!o->max_shard_bytes) o->max_shard_bytes = 1;
  return GORP_OK;
}

static int export_hf_main(const void *args) {
  const export_args *a = args;
  hf_export_opts o;
  GORP_CALL(export_opts(a, &o));
  return hf_export(a->src, a->out, &o);
}

static int export_peft_main(const void *args) {
  const export_args *a = args;
  hf_export_opts o;
  GORP_CALL(export_opts(a, &o));
  return hf_export_peft(a->src, a->out, a->task, &o);
}

#define EXPORT_COMMON                                                                              \
  {NULL,                                                                                           \
   CMD_TEXT,                                                                                       \
   offsetof(export_args, out),                                                                     \
   "OUT_DIR",                                                                                      \
   "the folder to write (new or empty; --force for one that holds files)",                         \
   1},                                                                                             \
      {"tokenizer",                                                                                \
       CMD_TEXT,                                                                                   \
       offsetof(export_args, tokenizer),                                                           \
       "FILE",                                                                                     \
       "tokenizer.json to ship (default: a run's data.tokenizer when it is a file)",               \
       0},                                                                                         \
      {"max-shard-gb",                                                                             \
       CMD_FLOAT,                                                                                  \
       offsetof(export_args, max_shard_gb),                                                        \
       "GB",                                                                                       \
       "weights past this size are split into shards with an index (default 5, transformers')",    \
       0},                                                                                         \
  {                                                                                                \
    "force", CMD_FLAG, offsetof(export_args, force), NULL,                                         \
        "replace the exported files in an OUT_DIR that holds files", 0                             \
  }

static const cmd_arg export_hf_table[] = {
    {NULL, CMD_TEXT, offsetof(export_args, src), "MODEL.h5|RUN_DIR",
     "a model file, or a run directory (its model.h5: the fine-tuned model, adapters merged)", 1},
    EXPORT_COMMON,
};

const cmd_spec cmd_export_hf_spec = {
    CMD_SPEC("export-hf",
             "writes a model as a Hugging Face LlamaForCausalLM folder (float32 safetensors; "
             "docs/EXPORT.md)",
             export_hf_table, export_args, export_hf_main),
    .defaults = &export_defaults, .serial = 1};

static const cmd_arg export_peft_table[] = {
    {NULL, CMD_TEXT, offsetof(export_args, src), "RUN_DIR", "a LoRA run's directory", 1},
    EXPORT_COMMON,
    {"task", CMD_TEXT, offsetof(export_args, task), "T", "only the pair that trained on task T", 0},
};

const cmd_spec cmd_export_peft_spec = {
    CMD_SPEC("export-peft",
             "writes a run's base model and each task's LoRA pair as PEFT adapters "
             "(docs/EXPORT.md)",
             export_peft_table, export_args, export_peft_main),
    .defaults = &export_defaults, .serial = 1};
