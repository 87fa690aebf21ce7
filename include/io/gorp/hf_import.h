/* Import of a Hugging Face LLaMA directory: config.json plus model.safetensors, or shards listed
 * by model.safetensors.index.json. Every tensor of the model table must be present with its exact
 * shape (F32, F16 or BF16); unknown tensors are errors, except rotary_emb.inv_freq buffers and, for
 * tied embeddings, lm_head.weight (both of which HF ignores too).
 * Not for: writing the model file (modelfile.h), tokenizers, PyTorch .bin checkpoints. */
#ifndef GORP_HF_IMPORT_H
#define GORP_HF_IMPORT_H

#include "gorp/model.h"

/* Parses the text of a LlamaForCausalLM config.json (path names it in messages) into cfg, with
 * HF's defaults for optional keys. rope_scaling and activations other than silu are refused. */
int hf_config_parse(const char *json, const char *path, model_config *cfg);
/* Reads and parses a config.json: src is that file or a folder holding it (a Hugging Face model
 * folder). *text receives the file's text (free() it) unless text is NULL. */
int hf_config_read(const char *src, model_config *cfg, char **text);
/* Creates m from directory dir. A matrix stored as BF16 stays bf16 (frozen, model_set_bf16; a
 * LLaMA-2-7B in bf16 is held in 13.5 GB, not 27, and modelfile_save writes it as bfloat16
 * datasets); F32 and F16 tensors and BF16 vectors become fp32 (exactly). *config_json receives
 * config.json's text (free() it), to be kept in the model file. On failure m is left freed and
 * *config_json NULL. */
int hf_import(model *m, const char *dir, char **config_json);

#endif
