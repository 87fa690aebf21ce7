/* Import of a Hugging Face LLaMA directory: config.json plus model.safetensors, or shards listed
 * by model.safetensors.index.json. Every tensor of the model table must be present with its exact
 * shape (F32, F16 or BF16); unknown tensors are errors, except rotary_emb.inv_freq buffers and, for
 * tied embeddings, lm_head.weight (both of which HF ignores too).
 * Not for: the model file's format (modelfile.h), tokenizers, PyTorch .bin checkpoints. */
#ifndef GORP_HF_IMPORT_H
#define GORP_HF_IMPORT_H

#include "gorp/model.h"

struct modelfile_counts;

/* Parses the text of a LlamaForCausalLM config.json (path names it in messages) into cfg, with
 * HF's defaults for optional keys. rope_scaling and activations other than silu are refused. */
int hf_config_parse(const char *json, const char *path, model_config *cfg);
/* Reads and parses a config.json: src is that file or a folder holding it (a Hugging Face model
 * folder). *text receives the file's text (free() it) unless text is NULL. */
int hf_config_read(const char *src, model_config *cfg, char **text);
/* Converts directory dir into the model file out (modelfile.h), holding one tensor in memory at a
 * time (the largest: a 7B embedding, 0.5 GB), never the model. A matrix stored as BF16 is written
 * as bfloat16 (a LLaMA-2-7B in bf16 stays 13.5 GB, not 27); F32 and F16 tensors and BF16 vectors
 * as float32 (exactly). config.json's text is kept as /model's hf_config. out is published
 * atomically once every tensor was written; on failure it is left as it was. *counts: what was
 * written. */
int hf_import(const char *dir, const char *out, struct modelfile_counts *counts);

#endif
