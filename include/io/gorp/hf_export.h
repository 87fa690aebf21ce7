/* Export of gorp models to the layouts that Hugging Face transformers and PEFT load
 * (docs/EXPORT.md): gorp export-hf writes a LlamaForCausalLM folder (config.json, float32
 * model.safetensors or shards with model.safetensors.index.json, the tokenizer files when the
 * tokenizer.json is known); gorp export-peft writes the base a run's adapters go on (its
 * model.init, exported as above) and each task's LoRA pair as a PEFT adapter folder.
 * Every export is written into a staging folder beside OUT_DIR and renamed into place at the end:
 * a failed export leaves OUT_DIR as it was. An OUT_DIR that holds files is refused unless force.
 * Not for: reading Hugging Face folders (hf_import.h) or the safetensors format (safetensors.h). */
#ifndef GORP_HF_EXPORT_H
#define GORP_HF_EXPORT_H

#include <stdint.h>

/* transformers' default max_shard_size, "5GB" (decimal) */
#define HF_EXPORT_SHARD_BYTES 5000000000ull

typedef struct hf_export_opts {
  uint64_t max_shard_bytes; /* weights of more bytes are split into shards with an index */
  int force;                /* 1: an OUT_DIR holding files gets the exported files replaced */
  const char *tokenizer;    /* a tokenizer.json to ship with the model, or NULL (a RUN_DIR: the
                               run's data.tokenizer when it is a file) */
} hf_export_opts;

/* gorp export-hf: src is a model file (any file gorp logits reads) or a run directory (its
 * model.h5, the fine-tuned model with the adapters merged). */
int hf_export(const char *src, const char *out_dir, const hf_export_opts *o);
/* gorp export-peft: out_dir/base (the run's model.init, checked to be model.h5 without its
 * adapters) and out_dir/<task>/adapter_model.safetensors + adapter_config.json for every pair of
 * run_dir's model.h5, or only the pair that trained on task when task is not NULL. */
int hf_export_peft(const char *run_dir, const char *out_dir, const char *task,
                   const hf_export_opts *o);

#endif
