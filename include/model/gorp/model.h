/* LLaMA decoder (as Hugging Face LlamaForCausalLM computes it): parameter layout, forward,
 * backward, loss and greedy decoding on one rank.
 *
 * Parameters, gradients and activations are each ONE allocation with named views (llm.c style).
 * Tensors are listed in Hugging Face order and carry their HF names so that model files,
 * checkpoints and imports never re-derive them. Shapes are row-major, [out, in] for linears.
 * Tensor parallelism (docs/PARALLEL.md, Megatron): with tp ranks, q, k, v, gate and up are
 * column-parallel (this rank holds a block of output rows: H/tp query heads, KV/tp key/value heads,
 * F/tp intermediate rows), o and down row-parallel (the matching block of input columns); norms,
 * embedding and head are replicated. Each rank's forward pass sums the partial outputs of o and
 * down over the TP group (g), its backward pass the partial input gradients of q,k,v and gate,up
 * (f). Tables, views and activations hold this rank's shard; param_tensor says where it lies in
 * the logical (Hugging Face) tensor, which files store.
 * Training and greedy decoding run the same layer forward (src/model/model_layer.h); what a
 * training step adds (LoRA dropout, loss weights) is an argument of model_forward (model_step),
 * never a field that a caller sets around the step.
 * Not for: optimizers (optim.h), file formats (modelfile.h), the MPI layout (dist.h). */
#ifndef GORP_MODEL_H
#define GORP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "gorp/ops.h"

typedef struct model_config {
  int vocab_size;        /* V */
  int hidden_size;       /* C */
  int intermediate_size; /* F */
  int num_layers;        /* L */
  int num_heads;         /* H */
  int num_kv_heads;      /* KV, divides H (grouped-query attention) */
  int head_dim;          /* D, HF default C / H */
  int max_seq;           /* max_position_embeddings */
  float rms_eps;
  float rope_theta;
  int tie_embeddings; /* lm_head shares model.embed_tokens.weight */
} model_config;

enum { MODEL_NAME_MAX = 96 };

/* The tensor table (HF order): the embedding, then MODEL_LAYER_TENSORS per layer (input norm, q,
 * k, v, o, post-attention norm, gate, up, down), the final norm, and lm_head unless tied. The
 * MODEL_N_LINEARS linears of a layer are numbered q, k, v, o, gate, up, down (lora.h's targets). */
enum { MODEL_LAYER_TENSORS = 9, MODEL_N_LINEARS = 7 };

/* Index in the tensor table of linear `linear` (0..MODEL_N_LINEARS-1) of layer `layer`. */
int model_linear_tensor(int layer, int linear);

/* The architecture keys of model_config, the one list of them: config.json's name (the attribute
 * of a model file's /model), gorp's name (config.ini's model.<name>, gorp plan --json), the type
 * and place of the field. In config.json's order, which model files and their generated
 * hf_config keep. Every reader and writer of the architecture walks this table. */
typedef enum model_key_type {
  MODEL_KEY_INT,  /* int field; config.json number, I32 attribute */
  MODEL_KEY_BOOL, /* int field 0/1; config.json true/false, I32 attribute */
  MODEL_KEY_FLOAT /* float field; config.json number, F64 attribute (shortest decimal) */
} model_key_type;

typedef struct model_key {
  const char *hf;      /* config.json key, e.g. num_hidden_layers */
  const char *name;    /* gorp's, e.g. num_layers */
  model_key_type type; /* of the field */
  size_t offset;       /* of the field in model_config */
  int required;        /* config.json must give it: Hugging Face's LlamaConfig has no default */
  int max; /* MODEL_KEY_INT: a positive integer at most this (model_config_check); else 0 */
} model_key;

/* The table, *n entries. */
const model_key *model_config_keys(int *n);
/* The field of key k in c, as a double (exact for every int and float). */
double model_key_get(const model_config *c, const model_key *k);
/* Sets the field of key k in c to v (an int field takes (int)v, a float one (float)v). */
void model_key_set(model_config *c, const model_key *k, double v);

/* The widest per-token activation of a layer on one rank of a tp-way split, max(C, F/tp,
 * H/tp * D) floats: the width of the backward scratch and of any buffer that holds the input or
 * output of one linear per token. tp = 1 gives the logical model's. */
size_t model_widest(const model_config *c, int tp);

/* Limits that keep every size product of the model, its activations and its files in range
 * (docs/CONFIG.md): each dimension (and num_heads x head_dim) at most MODEL_MAX_DIM, at most
 * MODEL_MAX_LAYERS layers and MODEL_MAX_PARAMS parameters in all. */
enum { MODEL_MAX_DIM = 1 << 24, MODEL_MAX_LAYERS = 1 << 16 };
#define MODEL_MAX_PARAMS (1ull << 40)

/* How a tensor is cut over the TP group. */
typedef enum tensor_split {
  SPLIT_NONE = 0, /* replicated */
  SPLIT_ROWS = 1, /* column-parallel linear: a block of output rows */
  SPLIT_COLS = 2  /* row-parallel linear: a block of input columns */
} tensor_split;

typedef struct param_tensor {
  char name[MODEL_NAME_MAX]; /* HF name, e.g. model.layers.0.mlp.gate_proj.weight */
  int ndim;                  /* 1 or 2 */
  int64_t shape[2];          /* this rank's [rows, cols] row-major; shape[1] = 1 when ndim == 1 */
  int64_t full[2];           /* the logical tensor's shape (== shape on one rank) */
  tensor_split split;
  int64_t split_off; /* first logical row (SPLIT_ROWS) or column (SPLIT_COLS) held here */
  size_t offset;     /* into model.params */
  size_t numel;
  int trainable;      /* 1: model_backward computes its gradient (default: every tensor) */
  size_t grad_offset; /* into model.grads when trainable */
  /* 1: stored in bf16, offset counts into model.params16 (a frozen 2-D tensor of a model.dtype =
   * bf16 run, model_set_bf16); 0: fp32, offset counts into model.params */
  int bf16;
  /* 1: trainable, but its gradient is never held whole: model_backward computes it layer by
   * layer into model.grad_slot and hands it to model.grad_hook (model_set_streamed) */
  int streamed;
} param_tensor;

/* Shapes below name the logical sizes; under TP, H, KV and F are this rank's H_loc, KV_loc and
 * F_loc. */
typedef struct layer_params {
  float *ln1; /* (C) input_layernorm */
  float *wq;  /* (H*D, C) */
  float *wk;  /* (KV*D, C) */
  float *wv;  /* (KV*D, C) */
  float *wo;  /* (C, H*D) */
  float *ln2; /* (C) post_attention_layernorm */
  float *wg;  /* (F, C) gate_proj */
  float *wu;  /* (F, C) up_proj */
  float *wd;  /* (C, F) down_proj */
} layer_params;

typedef struct model_views {
  float *embed;         /* (V, C) */
  layer_params *layers; /* L entries */
  float *norm;          /* (C) */
  float *head;          /* (V, C); == embed when tied */
} model_views;

/* Activations saved by the forward pass for the backward pass, for a batch of B x T. The
 * per-layer buffers below (xmid through h, rstd1/rstd2, att) hold kept_layers layers: L, or under
 * recompute one slot that each layer's forward (and its recomputation in backward) reuses. */
typedef struct model_acts {
  int B, T;     /* capacity the buffers were sized for */
  float *x;     /* (L+1, B, T, C) residual stream entering each layer; [L] enters the final norm */
  float *xmid;  /* (L, B, T, C) residual after attention */
  float *ln1;   /* (L, B, T, C) */
  float *rstd1; /* (L, B, T) */
  float *q;     /* (L, B, T, H*D) after RoPE */
  float *k;     /* (L, B, T, KV*D) after RoPE */
  float *v;     /* (L, B, T, KV*D) */
  float *att;   /* (L, B, H, T, T) softmax probabilities (causal) */
  float *atty;  /* (L, B, T, H*D) attention output before o_proj */
  float *ln2;   /* (L, B, T, C) */
  float *rstd2; /* (L, B, T) */
  float *g;     /* (L, B, T, F) gate pre-activation */
  float *u;     /* (L, B, T, F) up */
  float *h;     /* (L, B, T, F) silu(g) * u */
  float *lnf;   /* (B, T, C) */
  float *head_in;  /* (R, C) the rows of lnf the head computed, packed (rows_gather); head modes
                    * other than MODEL_HEAD_ALL, whose head reads lnf itself */
  float *rstdf;    /* (B, T) */
  float *logits;   /* (R, V) for the R rows the head computed (model_head_mode); holds dlogits
                    * after model_backward */
  float *head_w;   /* (R) loss weights of those rows (head mode MODEL_HEAD_TARGETS) */
  int *ids;        /* (4, B, T) ints, a second allocation: the pass's tokens, its targets, then
                    * head_rows */
  int *head_rows;  /* (2, B, T) in ids: the R rows of (B, T) the head computed, then their R
                    * targets */
  int n_head_rows; /* R of the last forward pass */
  /* what the forward pass computes on the host and uploads, in one host allocation (malloc)
   * that starts at host_rows: */
  int *host_rows;   /* (2, B, T) head_rows' values */
  float *host_w;    /* (B, T) head_w's values */
  float *host_rope; /* (2, T, D/2) rope_cos's, then rope_sin's values */
  float *rope_cos;  /* (T, D/2) */
  float *rope_sin;  /* (T, D/2) */
  /* scratch for backward, reused per layer */
  float *dx;    /* (B, T, C) gradient of the residual stream */
  float *dbuf;  /* (B, T, max(C, F, H*D)) */
  float *dbuf2; /* (B, T, max(C, F, H*D)) */
  float *dq;    /* (B, T, H*D) */
  float *dk;    /* (B, T, KV*D) */
  float *dv;    /* (B, T, KV*D) */
  float *dg;    /* (B, T, F) */
  float *du;    /* (B, T, F) */
  float *datt;  /* (n_datt, T, T): one attention-backward scratch per thread */
  int n_datt;
  int kept_layers; /* layers the per-layer buffers (xmid ... h, att) hold: L, or 1 (recompute) */
} model_acts;

/* Key/value caches of up to B sequences and the scratch of one decoding step (model_generate.c):
 * a step takes one new position of each of N <= B sequences through the layers of model.c. */
typedef struct model_kv {
  int B, S;      /* sequences and positions per sequence the caches hold */
  float *k;      /* (L, B, S, KV*D) after RoPE */
  float *v;      /* (L, B, S, KV*D) */
  float *x;      /* (B, C) residual entering a layer */
  float *xmid;   /* (B, C) residual after attention */
  float *xout;   /* (B, C) residual leaving a layer */
  float *ln;     /* (B, C) normed input of attention, then of the MLP */
  float *rstd;   /* (B) */
  float *q;      /* (B, H*D) */
  float *knew;   /* (B, KV*D) the step's keys, stored into k after RoPE */
  float *vnew;   /* (B, KV*D) the step's values, stored into v */
  float *atty;   /* (B, H*D) attention output */
  float *g, *u;  /* (B, F) */
  float *h;      /* (B, F) silu(g) * u */
  float *logits; /* (B, V) */
  float *cos_t;  /* (B, D/2) RoPE of each row's position */
  float *sin_t;  /* (B, D/2) */
  float *att;    /* (n_att, H/KV, S) attention scratch, one per thread */
  int n_att;
  /* (B) each row's token, sequence, position and cache row (seq * S + pos): a second
   * allocation, ints */
  int *tok, *seq, *pos, *rows;
  /* the host's side, one host allocation (malloc) starting at host_tok: what decoding decides
   * there and uploads, and the logits it downloads to choose the next ids */
  int *host_tok, *host_seq, *host_pos, *host_rows; /* (B) each: tok's ... rows' values */
  int *next;                                       /* (B) each sequence's next token */
  float *host_rope;                                /* (2, B, D/2) cos_t's, then sin_t's values */
  float *host_logits;                              /* (B, V) */
} model_kv;

/* The most end ids a model names (model.eos). */
enum { MODEL_MAX_EOS = 8 };

struct lora;
struct lora_dropout_ctx;
struct dist;

/* Which rows of (B, T) the output head computes. The head (V x C) is a fifth of a small model's
 * FLOPs, and most rows' logits are never read: training reads those with a target (a
 * benchmark answer is a few ids after ~150 prompt ids), prefill the last, activation statistics
 * none. */
typedef enum model_head_mode {
  MODEL_HEAD_ALL = 0, /* every row (gorp logits, tests against PyTorch) */
  MODEL_HEAD_TARGETS, /* the rows with a target >= 0, in order (needs targets) */
  MODEL_HEAD_LAST,    /* the last row of each sequence (no targets) */
  MODEL_HEAD_NONE     /* none: the layers' activations only (no targets) */
} model_head_mode;

/* What a training step adds to a forward pass: LoRA dropout, per-position loss weights, the
 * head's rows. model_forward records it with the tokens and targets for model_backward; a NULL
 * step (or NULL fields) means no dropout, every weight 1 and every row's logits, as evaluation
 * computes. */
typedef struct model_step {
  const struct lora_dropout_ctx *dropout; /* this step's masks, or NULL */
  const float *loss_weights;              /* (B, T) per-position weights, or NULL (all 1) */
  model_head_mode head;                   /* which rows get logits */
} model_step;

typedef struct model {
  model_config cfg;         /* the logical architecture */
  const struct dist *tp;    /* the TP group when tp_size > 1, else NULL */
  int tp_size, tp_rank;     /* 1, 0 on one rank */
  int H_loc, KV_loc, F_loc; /* this rank's query heads, key/value heads, intermediate rows */
  int n_tensors;
  param_tensor *tensors;         /* HF order */
  size_t n_params;               /* of the fp32 tensors */
  float *params;                 /* one allocation, n_params floats: the fp32 tensors */
  size_t n_params16;             /* of the bf16 tensors */
  uint16_t *params16;            /* one allocation, n_params16 bf16 values (bf16.h), or NULL */
  struct bf16_gemm_cache *bf16c; /* the bf16 products (bf16.h), or NULL */
  /* the bf16 products of a model in another table's memory than the host's: their activations
   * rounded to bf16 (op_weight.scratch), n_scratch16 values in the model's memory, grown by
   * model_forward and decoding; NULL otherwise */
  uint16_t *scratch16;
  size_t n_scratch16;
  /* The ops table of the memory the model's arrays live in, through which the step's element-wise
   * ops and attention run (backend.h): model_plan_tp sets the CPU's (backend_host), whatever
   * run.backend is; the products go through the selected backend (ops.h). A caller may set
   * another table between model_plan_tp and model_alloc_params: the arrays then live in its
   * memory (read and written through its upload and download), and model_forward,
   * model_backward and model_generate run there, with LoRA (its arrays in the same memory) and
   * bf16 frozen weights, on one rank (model_forward refuses TP and bf16 trained products, whose
   * sums and products still read host memory). */
  const backend_ops *ops;
  /* 1: the trainable fp32 matrices multiply in bf16 with fp32 sums too (model.trained_products);
   * set before model_alloc_params, which then creates bf16c */
  int trained_bf16;
  size_t n_grads; /* floats of the trainable tensors */
  float *grads;   /* one allocation over the trainable tensors; NULL until model_alloc_grads */
  model_views w;  /* views into params; NULL for a bf16 tensor (model_weight reads both) */
  model_views gw; /* views into grads (grad_slot for a streamed tensor); NULL for frozen ones */
  /* the streamed tensors' gradients: one layer's at a time, each at its grad_offset; zeroed
   * before each layer's backward */
  float *grad_slot;
  size_t n_grad_slot;
  size_t n_streamed; /* floats of every streamed tensor's gradient, had they been held whole */
  /* called by model_backward after layer l's backward, when the gradients of its streamed
   * tensors are complete in grad_slot; it consumes them (a non-zero return stops the pass) */
  int (*grad_hook)(void *ctx, struct model *m, int layer);
  void *grad_hook_ctx;
  struct lora *lora; /* adapters on the linears, or NULL (owned by the caller) */
  /* 1: the forward pass keeps each layer's input only (acts.x) and model_backward recomputes
   * each layer before its backward (train.recompute); set before model_reserve */
  int recompute;
  model_acts acts;
  model_kv kv;
  /* state of the last forward pass (its tokens and targets: acts.ids) */
  int has_targets; /* it had targets */
  model_step step; /* its dropout and loss weights (NULL fields: none) */
  int B, T;
  int n_targets;  /* positions that count in the loss */
  float loss_div; /* the loss was divided by this */
  /* the ids that end the model's turns (a model file's eos_token_id, model_set_eos): decoding
   * stops at each; n_eos = 0 for a model that names none */
  int eos[MODEL_MAX_EOS];
  int n_eos;
  /* the weights as read from a model file (modelfile.c sets both; a model made otherwise has
   * from_file 0): file_checksum sums each tensor's name and crc32 as read, so that a lean
   * checkpoint can name the base its frozen tensors come from (docs/CHECKPOINT.md) */
  int from_file;
  uint32_t file_checksum;
} model;

/* Checks a configuration, including the size limits above; the message names the offending key
 * (as config.json spells it). */
int model_config_check(const model_config *cfg);
/* The parameter count of the logical model in *n; 0 (and *n = UINT64_MAX) when it overflows. */
int model_config_params(const model_config *cfg, uint64_t *n);
/* Builds the tensor table and allocates zeroed parameters, every tensor fp32. */
int model_create(model *m, const model_config *cfg);
/* The same for this rank's shard of the TP group of d (NULL or tp_size 1: the whole model).
 * Refuses heads, key/value heads or intermediate size that tp does not divide. */
int model_create_tp(model *m, const model_config *cfg, const struct dist *d);

/* What a model's maker decides between its tensor table and its allocation: which tensors train
 * and which are stored in bf16 (a 7B model's frozen weights must never exist in fp32 all at once).
 * fn runs on the table (model_plan_tp's; m->params not yet allocated) and calls
 * model_set_trainable and model_set_bf16. */
typedef struct model_prep {
  int (*fn)(model *m, const void *ctx);
  const void *ctx;
} model_prep;
/* model_create_tp in three steps: the table only (every tensor fp32 and trainable), */
int model_plan_tp(model *m, const model_config *cfg, const struct dist *d);
/* then prep (NULL: nothing), then the allocation (zeroed) and the views. */
int model_alloc_params(model *m, const model_prep *prep);
/* Stores tensor i in bf16: a frozen (not trainable) 2-D tensor, before model_alloc_params. */
int model_set_bf16(model *m, int i);
/* Stores every frozen 2-D tensor of m in bf16 (model_set_bf16 on each); before model_alloc_params.
 */
int model_bf16_frozen(model *m);
/* A model_prep fn for inference in bf16 (gorp logits/generate --bf16): freezes every tensor and
 * stores every matrix in bf16, as a model.dtype = bf16 run holds its frozen weights. */
int model_prep_bf16_inference(model *m, const void *unused);
/* Tensor i as the ops read it (ops.h): its fp32 values, or its bf16 values and m's cache. */
op_weight model_weight(const model *m, int i);
/* The head's tensor: model.embed_tokens.weight when tied, else lm_head.weight. */
int model_head_tensor(const model *m);
/* The logical index (row-major in the full tensor) of element j of this rank's shard of t. */
size_t model_logical_index(const param_tensor *t, size_t j);
void model_free(model *m);
/* HF's _init_weights: normal(0, std) for linears, normal(0, embed_std) for the embedding, ones for
 * norms. Deterministic in seed, independent of how the model is laid out (a shard holds the
 * logical tensor's values); a bf16 tensor holds them rounded. */
void model_init_random(model *m, uint64_t seed, float std, float embed_std);
/* The tensor with this HF name, or NULL. */
const param_tensor *model_find(const model *m, const char *name);
/* Marks tensor i (index into tensors) trainable or frozen; before model_alloc_grads. A bf16
 * tensor cannot train (an error). */
int model_set_trainable(model *m, int i, int trainable);
/* Makes trainable tensor i of a layer streamed (param_tensor.streamed); before model_alloc_grads.
 * The embedding, head and final norm cannot be: their gradients are complete only at the end. */
int model_set_streamed(model *m, int i);
/* Allocates gradients for the trainable tensors (once; later calls keep them): the streamed ones
 * share grad_slot, sized for the layer whose streamed tensors are largest together. */
int model_alloc_grads(model *m);
/* *p = n elements of size bytes each, zeroed, in the memory of m's ops table (model.ops): how
 * every array of the model (parameters, gradients, activations, caches) is allocated, and freed
 * with m->ops->free. The error names role; n * size must not overflow. */
int model_array_alloc(const model *m, void **p, size_t n, size_t size, const char *role);
/* Tensor i's gradient (its shard, numel floats): in grads, or in grad_slot when streamed (valid
 * in grad_hook only); NULL when frozen. */
float *model_grad(const model *m, int i);
GORP_WUR int model_zero_grads(model *m);

/* Sizes the activation buffers for batches up to B x T once, so that training steps allocate
 * nothing. model_forward calls it too, growing the buffers only when needed. */
int model_reserve(model *m, int B, int T);
/* Forward pass over tokens (B, T). With targets, *loss = sum of -log p(target) over positions with
 * target >= 0 (each times its step->loss_weights entry), divided by loss_div (pass the number of
 * such positions for a mean; 0 means use the local count). step: a training step's dropout and
 * loss weights, or NULL; its dropout context must live until model_backward (tokens, targets and
 * loss weights are copied). Every argument is host memory, whatever m->ops is. Token ids must be
 * < V (checked). */
int model_forward(model *m, const int *tokens, const int *targets, const model_step *step, int B,
                  int T, float loss_div, float *loss);
/* Accumulates d(loss)/d(params) into m->grads for the last forward pass (which had targets), with
 * its step's dropout masks and loss weights. */
int model_backward(model *m);
/* Logits of the last forward pass, (R, V): the R = acts.n_head_rows rows acts.head_rows that its
 * step's head mode chose (MODEL_HEAD_ALL: every row of (B, T), in order). In the model's memory
 * (m->ops: download them where it is not the host's). */
const float *model_logits(const model *m);

/* Greedy decoding of B prompts together, each with its own KV cache: prompt b (prompts[b],
 * n_prompt[b] ids) gets up to max_new new ids in out (B, max_new), row b, n_out[b] of them; a
 * prompt stops after any of the n_stop ids of stop (that id is not stored; n_stop may be 0).
 * Each prompt is prefilled on its own (model_forward), then every step takes one new position of
 * each unfinished prompt through the layers at once. The trained matrices multiply in fp32 here
 * even under model.trained_products = bf16 (m->trained_bf16 is cleared for the call and restored).
 */
int model_generate(model *m, const int *const *prompts, const int *n_prompt, int B, int max_new,
                   const int *stop, int n_stop, int *out, int *n_out);
/* Sets m's end ids (m->eos) to the n ids of ids, each once: 1..MODEL_MAX_EOS ids, each in
 * [0, vocab_size); what names where they come from in the error ("FILE: attribute eos_token_id
 * of /model"). */
int model_set_eos(model *m, const int64_t *ids, int n, const char *what);
/* The set decoding stops at: m's end ids and the n_extra ids of extra (a tokenizer's EOS, a run's
 * eval.stop; negative ones skipped), each once, into stop (room for MODEL_MAX_EOS + n_extra),
 * *n_stop of them. */
void model_stop_ids(const model *m, const int *extra, int n_extra, int *stop, int *n_stop);

#endif
