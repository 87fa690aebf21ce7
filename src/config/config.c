/* The configuration schema and everything that walks it (see config.h): INI parsing through
 * inih, overrides, defaults, path resolution, validation, the canonical text and its hash, and
 * the Markdown tables of docs/CONFIG.md.
 *
 * inih (Debian libinih r55, its defaults) behaviour this file relies on, pinned by test_config:
 * - ';' and '#' start a comment at the start of a line; after a value only ';' preceded by
 *   whitespace does ("lr = 1e-3 ; note"), so "lr = 1e-3 # note" is a bad number, not a comment.
 * - "key: value" is accepted like "key = value"; names and values are whitespace-trimmed.
 * - An indented non-blank line after a key (blank lines in between too) is a continuation: the
 *   handler is called again with the same name and the line's text, inline comment included. We
 *   allow that for list keys only (more names; we cut the comment) and report it otherwise,
 *   because an indented "key = value" would silently become part of the key above.
 * - Lines are read through our reader in chunks of at most INI_MAX_LINE (200) bytes; the reader
 *   reports a longer line instead of letting inih parse its tail as a line of its own.
 * - Parsing goes on after an error and returns the first bad line (one without '=' or ':' or an
 *   unclosed "[section"); the handler's own errors are kept here, and the earliest one wins.
 * Files are read whole first (fs_read_regular: regular files of at most FS_MAX_CONFIG bytes, so
 * /dev/zero or a FIFO is refused instead of read forever) and a NUL byte is refused: inih and
 * every line check here stop at the first NUL, so the rest of its line would go unseen. */
#include "gorp/config.h"

#include "gorp/err.h"
#include "gorp/fsutil.h"
#include "gorp/synth.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum {
  CFG_INT,
  CFG_U64,
  CFG_FLOAT,
  CFG_BOOL,
  CFG_CHOICE,
  CFG_NAME, /* one name without blanks or commas; may be empty */
  CFG_PATH,
  CFG_LIST
} config_type;

enum {
  CFG_REQUIRED = 1, /* an empty value is an error after loading */
  CFG_LO_OPEN = 2,  /* the lower limit is excluded (> lo) */
  CFG_HI_OPEN = 4   /* the upper limit is excluded (< hi) */
};

typedef struct config_key {
  const char *section, *key;
  config_type type;
  size_t off;      /* the field in gorp_config */
  size_t off_n;    /* CFG_LIST: its int count field */
  const char *def; /* default, as text: parsed by the same code as file values */
  double lo, hi;   /* CFG_INT, CFG_FLOAT: allowed range (hi = INFINITY: none) */
  int flags;
  const char *choices; /* CFG_CHOICE: "a,b"; CFG_PATH: a keyword kept verbatim, not a path */
  const char *doc;     /* one line for docs/CONFIG.md */
} config_key;

static const struct {
  const char *name, *doc;
} sections[] = {
    {"run", "Where results go, randomness, the matrix backend and progress output."},
    {"model", "The model to train: fresh random weights from the architecture keys, or a file."},
    {"data", "The task sequence and how its examples become token sequences."},
    {"train", "Optimisation on each task of the sequence."},
    {"eval", "Greedy-decoding evaluation after each task."},
    {"lora", "LoRA adapters (methods seqlora, inclora and the methods built on them)."},
    {"full", "Full-rank weights trained in a rank-k gradient subspace (methods galore, gorp)."},
    {"parallel", "The MPI layout: world size = tp x dp (checked at start)."},
    {"pretrain", "gorp pretrain: the small base model of the synthetic suite (docs/SYNTHETIC.md)."},
    {"gorp", "GORP's shared gradient space (method gorp): what is protected, on which axis, how."},
};

#define FIELD(f) offsetof(gorp_config, f)
#define AT_LEAST(x) .lo = (x), .hi = INFINITY
#define ABOVE(x) .lo = (x), .hi = INFINITY, .flags = CFG_LO_OPEN
#define DIM(x) .lo = (x), .hi = MODEL_MAX_DIM /* a model dimension (see model.h's limits) */

static const config_key keys[] = {
    {"run", "out_dir", CFG_PATH, FIELD(run.out_dir), .def = "runs/default",
     .doc = "run directory (results, checkpoints, predictions)"},
    {"run", "name", CFG_NAME, FIELD(run.name), .def = "",
     .doc = "label of the run in results.h5 (attribute `name`) and in gorp_tables.py's tables, "
            "so that configs of one method (e.g. gorp on two axes) get rows of their own; "
            "empty = run.method"},
    {"run", "seed", CFG_U64, FIELD(run.seed), .def = "1",
     .doc = "seed of every random choice (init, shuffling, dropout)"},
    {"run", "backend", CFG_CHOICE, FIELD(run.backend), .def = "cpu", .choices = "cpu,cuda",
     .doc = "matrix backend"},
    {"run", "method", CFG_CHOICE, FIELD(run.method), .def = "seqft",
     .choices = "seqft,seqlora,inclora,olora,nlora,galore,gorp,mtl",
     .doc = "training method: `seqft` every weight with AdamW; `seqlora` one LoRA pair reused "
            "across tasks; `inclora` a new LoRA pair per task, earlier pairs frozen; `olora` "
            "inclora + orthogonality loss; `nlora` inclora + L1 on the new pair; `galore` "
            "inclora + full.targets in a rank-k subspace; `gorp` galore + the shared gradient "
            "space ([gorp]); `mtl` every weight on all tasks at once; see docs/ALGORITHM.md"},
    {"run", "checkpoint_every", CFG_INT, FIELD(run.checkpoint_every), .def = "0", AT_LEAST(0),
     .doc = "write a checkpoint every N training steps (besides every task end); 0 = task ends "
            "only"},
    {"run", "checkpoint_keep", CFG_INT, FIELD(run.checkpoint_keep), .def = "2", AT_LEAST(1),
     .doc = "checkpoints kept in run.out_dir/checkpoints (the newest)"},
    {"run", "log_every", CFG_INT, FIELD(run.log_every), .def = "10", AT_LEAST(1),
     .doc = "print a progress line every N steps"},

    {"model", "init", CFG_PATH, FIELD(model.init), .def = "random", .choices = "random",
     .doc = "`random` (fresh weights from the model.* architecture keys) or an HDF5 model file "
            "or checkpoint (then the architecture keys are ignored, and checkpoints of a run that "
            "freezes part of it refer to it: docs/CHECKPOINT.md, lean checkpoints)"},
    {"model", "vocab_size", CFG_INT, FIELD(model.arch.vocab_size), .def = "0", DIM(0),
     .doc = "vocabulary size; 0 = the tokenizer's; a larger one pads the embedding and head (a "
            "generated id past the tokenizer's ends the answer)"},
    {"model", "hidden_size", CFG_INT, FIELD(model.arch.hidden_size), .def = "64", DIM(1),
     .doc = "width of the residual stream"},
    {"model", "intermediate_size", CFG_INT, FIELD(model.arch.intermediate_size), .def = "172",
     DIM(1), .doc = "width of the SwiGLU MLP"},
    {"model", "num_layers", CFG_INT, FIELD(model.arch.num_layers), .def = "2", .lo = 1,
     .hi = MODEL_MAX_LAYERS, .doc = "decoder layers"},
    {"model", "num_heads", CFG_INT, FIELD(model.arch.num_heads), .def = "4", DIM(1),
     .doc = "attention (query) heads"},
    {"model", "num_kv_heads", CFG_INT, FIELD(model.arch.num_kv_heads), .def = "0", DIM(0),
     .doc = "key/value heads, dividing num_heads (grouped-query attention); 0 = num_heads"},
    {"model", "head_dim", CFG_INT, FIELD(model.arch.head_dim), .def = "0", DIM(0),
     .doc = "width of one head; 0 = hidden_size / num_heads, which must then divide evenly"},
    {"model", "max_seq", CFG_INT, FIELD(model.arch.max_seq), .def = "1024", DIM(2),
     .doc = "longest sequence (rotary position table); an evaluation prompt and its answer share "
            "it, so it must exceed eval.max_new_tokens"},
    {"model", "rms_eps", CFG_FLOAT, FIELD(model.arch.rms_eps), .def = "1e-6", ABOVE(0),
     .doc = "RMSNorm epsilon"},
    {"model", "rope_theta", CFG_FLOAT, FIELD(model.arch.rope_theta), .def = "10000", ABOVE(0),
     .doc = "RoPE base"},
    {"model", "tie_embeddings", CFG_BOOL, FIELD(model.arch.tie_embeddings), .def = "false",
     .doc = "the LM head shares the embedding matrix"},
    {"model", "dtype", CFG_CHOICE, FIELD(model.dtype), .def = "fp32", .choices = "fp32,bf16",
     .doc = "how the frozen weights are held: `fp32`, or `bf16` (every frozen matrix stored, "
            "written and multiplied in bfloat16 with fp32 sums; what trains, the norms, LoRA "
            "factors and optimizer state stay fp32; docs/ARCHITECTURE.md, bf16 weights)"},
    {"model", "trained_products", CFG_CHOICE, FIELD(model.trained_products), .def = "fp32",
     .choices = "fp32,bf16",
     .doc =
         "how the trained fp32 matrices (full-rank targets; every linear, the embedding and "
         "head for seqft and mtl) multiply: `fp32`, or `bf16` (forward, input-gradient and "
         "weight-gradient products take both operands rounded to bfloat16 and sum in fp32, "
         "as torch.autocast computes them; the fp32 master and optimizer are unchanged). "
         "Faster where the CPU has AMX (BENCHMARKS.md), slower without bf16 instructions; "
         "LoRA factors and attention stay fp32, and evaluation multiplies in fp32. Independent of "
         "model.dtype"},
    {"model", "init_std", CFG_FLOAT, FIELD(model.init_std), .def = "0.02", ABOVE(0),
     .doc = "standard deviation of the random initial weights"},
    {"model", "embed_init_std", CFG_FLOAT, FIELD(model.embed_init_std), .def = "0", AT_LEAST(0),
     .doc = "standard deviation of the random embedding; 0 = model.init_std (PyTorch's own "
            "nn.Embedding default is 1)"},

    {"data", "format", CFG_CHOICE, FIELD(data.format), .def = "clbench",
     .choices = "clbench,synthetic",
     .doc = "`clbench`: `root/TaskType/dataset/{train,test,labels}.json`; `synthetic`: the "
            "generated suite (docs/SYNTHETIC.md; tasks syn-*, its own tokenizer)"},
    {"data", "synthetic_train", CFG_INT, FIELD(data.synthetic_train), .def = "1000", AT_LEAST(1),
     .doc = "synthetic suite: training items generated per task"},
    {"data", "synthetic_test", CFG_INT, FIELD(data.synthetic_test), .def = "150", AT_LEAST(1),
     .doc = "synthetic suite: test items generated per task"},
    {"data", "root", CFG_PATH, FIELD(data.root), .def = "none", .choices = "none",
     .doc = "the benchmark folder (required for data.format = clbench)"},
    {"data", "instructions", CFG_PATH, FIELD(data.instructions), .def = "none", .choices = "none",
     .doc = "instruction templates, instruction_config.json (required for data.format = clbench)"},
    {"data", "tasks", CFG_LIST, FIELD(data.tasks), FIELD(data.n_tasks), .def = "",
     .doc = "dataset folder names in training order, comma-separated (indented lines continue); "
            "give this or data.order"},
    {"data", "order", CFG_NAME, FIELD(data.order), .def = "",
     .doc = "a task order named in data.orders (e.g. `order1`), or with data.format = synthetic "
            "one of the suite's order1..order6; give this or data.tasks"},
    {"data", "orders", CFG_PATH, FIELD(data.orders), .def = "none", .choices = "none",
     .doc = "orders file: one order a line, `name dataset dataset ...`, `#` comments "
            "(the benchmark's six orders: inputs/orders.txt)"},
    {"data", "substitute", CFG_LIST, FIELD(data.substitute), FIELD(data.n_substitute), .def = "",
     .doc = "`old=new` replacements of datasets in the order, e.g. `yahoo=yelp` where yahoo is "
            "missing; `old=` removes the dataset"},
    {"data", "unlabelled", CFG_CHOICE, FIELD(data.unlabelled), .def = "score",
     .choices = "score,drop",
     .doc = "test items labelled `-` (no gold label, upstream MNLI): `score` them as never "
            "correct, as upstream does, or `drop` them"},
    {"data", "tokenizer", CFG_PATH, FIELD(data.tokenizer), .def = "byte", .choices = "byte",
     .doc = "`byte` (built-in byte-level) or a Hugging Face tokenizer.json"},
    {"data", "chat_template", CFG_PATH, FIELD(data.chat_template), .def = "none", .choices = "none",
     .doc = "`none` (the benchmark prompt as is) or a model's chat template rendered by "
            "scripts/chat_template.py (scripts/get_model.sh writes build/models/NAME.chat.json): "
            "every prompt becomes the user turn and the answer the assistant's (docs/DATA.md)"},
    {"data", "max_source_length", CFG_INT, FIELD(data.max_source_length), .def = "512", AT_LEAST(1),
     .doc = "token limit of the sentence part of a prompt"},
    {"data", "max_target_length", CFG_INT, FIELD(data.max_target_length), .def = "50", AT_LEAST(1),
     .doc = "token limit of an answer"},
    {"data", "max_train_per_task", CFG_INT, FIELD(data.max_train_per_task), .def = "0", AT_LEAST(0),
     .doc = "training examples per task; 0 = all"},
    {"data", "max_test_per_task", CFG_INT, FIELD(data.max_test_per_task), .def = "0", AT_LEAST(0),
     .doc = "test examples per task; 0 = all"},

    {"train", "batch_size", CFG_INT, FIELD(train.batch_size), .def = "8", AT_LEAST(1),
     .doc = "examples per optimizer step (global, over all ranks)"},
    {"train", "epochs", CFG_INT, FIELD(train.epochs), .def = "1", AT_LEAST(1),
     .doc = "passes over each task's training set"},
    {"train", "max_steps", CFG_INT, FIELD(train.max_steps), .def = "0", AT_LEAST(0),
     .doc = "stop each task after this many steps; 0 = epochs decide"},
    {"train", "lr", CFG_FLOAT, FIELD(train.lr), .def = "1e-3", ABOVE(0), .doc = "learning rate"},
    {"train", "beta1", CFG_FLOAT, FIELD(train.beta1), .def = "0.9", .lo = 0, .hi = 1,
     .flags = CFG_HI_OPEN, .doc = "Adam first-moment decay"},
    {"train", "beta2", CFG_FLOAT, FIELD(train.beta2), .def = "0.999", .lo = 0, .hi = 1,
     .flags = CFG_HI_OPEN, .doc = "Adam second-moment decay"},
    {"train", "eps", CFG_FLOAT, FIELD(train.eps), .def = "1e-8", ABOVE(0), .doc = "Adam epsilon"},
    {"train", "weight_decay", CFG_FLOAT, FIELD(train.weight_decay), .def = "0", AT_LEAST(0),
     .doc = "decoupled (AdamW) weight decay"},
    {"train", "grad_clip", CFG_FLOAT, FIELD(train.grad_clip), .def = "1.0", AT_LEAST(0),
     .doc = "clip the global gradient norm to this; 0 = off"},

    {"train", "recompute", CFG_BOOL, FIELD(train.recompute), .def = "false",
     .doc = "keep only each layer's input in the forward pass and recompute the layer in the "
            "backward pass: activation memory of one layer instead of all, about a third more "
            "compute, the same numbers bit for bit"},

    {"train", "per_task", CFG_LIST, FIELD(train.per_task), FIELD(train.n_per_task), .def = "",
     .doc = "per-task overrides `dataset:key=value` of epochs, batch_size, max_steps or lr, e.g. "
            "`MNLI:epochs=2`; lr is train.lr's, so seqft and mtl only (the other methods refuse "
            "it: their rates are lora.lr and full.lr)"},

    {"eval", "max_new_tokens", CFG_INT, FIELD(eval.max_new_tokens), .def = "50", AT_LEAST(1),
     .doc = "greedy decoding stops after this many tokens (or at a stop id: eval.stop)"},
    {"eval", "batch_size", CFG_INT, FIELD(eval.batch_size), .def = "16", AT_LEAST(1),
     .doc = "test prompts each rank decodes together, longest first; the predictions and "
            "scores do not depend on it (with `model.dtype = bf16` on a CPU with AVX512-BF16 and "
            "no AMX: not on values below 64, where every decoding step's products take the same "
            "path, docs/ARCHITECTURE.md)"},
    {"eval", "stop", CFG_LIST, FIELD(eval.stop), FIELD(eval.n_stop), .def = "",
     .doc = "token texts that end an answer besides the tokenizer's EOS and the model file's "
            "`eos_token_id`, comma-separated, e.g. `<|im_end|>`; each must be exactly one token of "
            "the run's tokenizer (at most 16; no blanks)"},
    {"eval", "zero_shot", CFG_BOOL, FIELD(eval.zero_shot), .def = "true",
     .doc = "evaluate the base model on every task before training (row 0 of the accuracy matrix); "
            "false leaves the row unmeasured, and FWT with it"},

    {"lora", "targets", CFG_LIST, FIELD(lora.targets), FIELD(lora.n_targets), .def = "q, v",
     .doc = "linears that carry adapters: any of q, k, v, o, gate, up, down, or all; `none` "
            "(galore, gorp) trains the full-rank targets alone"},
    {"lora", "r", CFG_INT, FIELD(lora.r), .def = "8", AT_LEAST(1), .doc = "adapter rank"},
    {"lora", "alpha", CFG_FLOAT, FIELD(lora.alpha), .def = "32", ABOVE(0),
     .doc = "the adapter term is scaled by alpha / r"},
    {"lora", "dropout", CFG_FLOAT, FIELD(lora.dropout), .def = "0.1", .lo = 0, .hi = 1,
     .flags = CFG_HI_OPEN, .doc = "dropout on the adapters' input while training"},
    {"lora", "lr", CFG_FLOAT, FIELD(lora.lr), .def = "2e-4", ABOVE(0),
     .doc = "learning rate of the adapters (train.lr is the full-weight learning rate)"},
    {"lora", "olora_lambda1", CFG_FLOAT, FIELD(lora.olora_lambda1), .def = "0.5", AT_LEAST(0),
     .doc = "olora: weight of sum |A_old A_new^T| (orthogonality of the new adapter)"},
    {"lora", "olora_lambda2", CFG_FLOAT, FIELD(lora.olora_lambda2), .def = "0", AT_LEAST(0),
     .doc = "olora: weight of the Frobenius norms of the new A and B"},
    {"lora", "nlora_lambda", CFG_FLOAT, FIELD(lora.nlora_lambda), .def = "0.4", AT_LEAST(0),
     .doc = "nlora: weight of the L1 norm of the new adapter pair"},

    {"full", "targets", CFG_LIST, FIELD(full.targets), FIELD(full.n_targets), .def = "gate",
     .doc = "full-rank weights that train (galore, gorp): any of q, k, v, o, gate, up, down, all, "
            "or none"},
    {"full", "optimizer", CFG_CHOICE, FIELD(full.optimizer), .def = "lowrank",
     .choices = "lowrank,adam",
     .doc = "`lowrank`: one-sided rank-k projected Adam; `adam`: plain Adam on the whole matrix"},
    {"full", "stream_grad", CFG_BOOL, FIELD(full.stream_grad), .def = "true",
     .doc = "with `lowrank`: each layer's gradient is compressed to rank k (and projected) as "
            "soon as backward produces it, so no full-rank gradient is held (LLaMA-2-7B's 32 "
            "gate_proj: 5.8 GB of fp32); the same step to float rounding (clipping scales the "
            "compressed gradient); false holds every gradient until the step"},
    {"full", "rank", CFG_INT, FIELD(full.rank), .def = "8", AT_LEAST(1),
     .doc = "k: rank of the gradient subspace (at most the smaller side of each target)"},
    {"full", "update_gap", CFG_INT, FIELD(full.update_gap), .def = "10", AT_LEAST(1),
     .doc = "T: recompute the subspace every T steps"},
    {"full", "scale", CFG_FLOAT, FIELD(full.scale), .def = "1.0", ABOVE(0),
     .doc = "alpha_full: the step is lr * scale * N Q"},
    {"full", "lr", CFG_FLOAT, FIELD(full.lr), .def = "1e-5", ABOVE(0),
     .doc = "learning rate of the full-rank weights"},

    {"parallel", "tp", CFG_INT, FIELD(parallel.tp), .def = "1", AT_LEAST(1),
     .doc = "tensor-parallel ranks per model replica (Megatron layout; must divide the key/value "
            "heads and the intermediate size; docs/PARALLEL.md)"},
    {"parallel", "dp", CFG_INT, FIELD(parallel.dp), .def = "1", AT_LEAST(1),
     .doc = "data-parallel replicas: each global batch is split over them and their gradients "
            "summed; results equal a single rank's up to reduction order"},

    {"pretrain", "out", CFG_PATH, FIELD(pretrain.out), .def = "base.h5",
     .doc = "the base model file; an existing one made with the same pretraining config is "
            "reused (its key is stored in OUT.key)"},
    {"pretrain", "steps", CFG_INT, FIELD(pretrain.steps), .def = "1500", AT_LEAST(1),
     .doc = "optimizer steps on the pretraining mix"},
    {"pretrain", "batch_size", CFG_INT, FIELD(pretrain.batch_size), .def = "16", AT_LEAST(1),
     .doc = "examples per step"},
    {"pretrain", "lr", CFG_FLOAT, FIELD(pretrain.lr), .def = "3e-3", ABOVE(0),
     .doc = "peak learning rate (AdamW with train.beta1/beta2/eps/weight_decay/grad_clip)"},
    {"pretrain", "warmup", CFG_INT, FIELD(pretrain.warmup), .def = "50", AT_LEAST(0),
     .doc = "linear warm-up steps, then cosine decay"},
    {"pretrain", "min_lr_ratio", CFG_FLOAT, FIELD(pretrain.min_lr_ratio), .def = "0.1", .lo = 0,
     .hi = 1, .doc = "the cosine decays to lr x this at the last step"},

    {"gorp", "energy", CFG_FLOAT, FIELD(gorp.energy), .def = "0.9", .lo = 0, .hi = 1,
     .flags = CFG_LO_OPEN,
     .doc = "share of a moment's squared norm the stored basis must capture after each task"},
    {"gorp", "axis", CFG_CHOICE, FIELD(gorp.axis), .def = "paper", .choices = "paper,input",
     .doc = "`paper`: LoRA A on its rank axis, full-rank on the compressed gradient's "
            "uncompressed axis (as released); `input`: every protected matrix on its input axis"},
    {"gorp", "basis_source", CFG_CHOICE, FIELD(gorp.basis_source), .def = "moment",
     .choices = "moment,activation",
     .doc = "bases from Adam's first moments, or (input axis) from the covariance of the "
            "layer's inputs over gorp.activation_examples examples of the finished task"},
    {"gorp", "project_update", CFG_BOOL, FIELD(gorp.project_update), .def = "false",
     .doc = "also project the update after Adam (exactly orthogonal steps)"},
    {"gorp", "project_lora", CFG_BOOL, FIELD(gorp.project_lora), .def = "true",
     .doc = "protect the LoRA A matrices (ablation switch)"},
    {"gorp", "project_full", CFG_BOOL, FIELD(gorp.project_full), .def = "true",
     .doc = "protect the full-rank targets (ablation switch)"},
    {"gorp", "activation_examples", CFG_INT, FIELD(gorp.activation_examples), .def = "128",
     AT_LEAST(1), .doc = "training examples whose layer inputs build activation bases"},
    {"gorp", "svd", CFG_CHOICE, FIELD(gorp.svd), .def = "exact", .choices = "exact,randomized",
     .doc = "SVD of the full-rank gradients: LAPACK, or randomized top-k (oversampling 8, 2 "
            "power iterations)"},
};

enum {
  N_SECTIONS = sizeof(sections) / sizeof(sections[0]),
  N_KEYS = sizeof(keys) / sizeof(keys[0])
};

static void *field(gorp_config *c, size_t off) {
  return (char *)c + off;
}
static const void *cfield(const gorp_config *c, size_t off) {
  return (const char *)c + off;
}

/* An empty path, choice or list (only the required keys have empty defaults). */
static int value_empty(const gorp_config *c, const config_key *k) {
  if (k->type == CFG_LIST) return *(const int *)cfield(c, k->off_n) == 0;
  if (k->type == CFG_PATH || k->type == CFG_CHOICE || k->type == CFG_NAME)
    return !(*(char *const *)cfield(c, k->off))[0];
  return 0;
}

static int key_index(const char *section, const char *name) {
  for (int i = 0; i < N_KEYS; i++)
    if (!strcmp(keys[i].section, section) && !strcmp(keys[i].key, name)) return i;
  return -1;
}

static int section_known(const char *section) {
  for (int s = 0; s < N_SECTIONS; s++)
    if (!strcmp(sections[s].name, section)) return 1;
  return 0;
}

/* ---- describing a key: shared by error messages and the docs ---- */

/* "cpu, cuda" or, with quote "`", "`cpu`, `cuda`". */
static void choices_text(const char *choices, const char *quote, char *buf, size_t n) {
  size_t len = 0;
  buf[0] = '\0';
  for (const char *p = choices; *p && len < n;) {
    size_t m = strcspn(p, ",");
    len += (size_t)snprintf(buf + len, n - len, "%s%s%.*s%s", p == choices ? "" : ", ", quote,
                            (int)m, p, quote);
    p += m + (p[m] == ',');
  }
}

/* ">= 1", "> 0", "in [0, 1)", "in [1, 65536]" (integers in full, never as 6.5536e+04). */
static void range_text(const config_key *k, char *buf, size_t n) {
  const int digits = k->type == CFG_INT ? 10 : 6;
  if (isinf(k->hi))
    snprintf(buf, n, "%s %.*g", (k->flags & CFG_LO_OPEN) ? ">" : ">=", digits, k->lo);
  else
    snprintf(buf, n, "in %c%.*g, %.*g%c", (k->flags & CFG_LO_OPEN) ? '(' : '[', digits, k->lo,
             digits, k->hi, (k->flags & CFG_HI_OPEN) ? ')' : ']');
}

/* What a value of k must look like, for "expected ..." in error messages. */
static void expected_text(const config_key *k, char *buf, size_t n) {
  char range[64];
  switch (k->type) {
  case CFG_INT:
    range_text(k, range, sizeof(range));
    snprintf(buf, n, "an integer %s", range);
    break;
  case CFG_U64:
    snprintf(buf, n, "an integer in [0, %" PRIu64 "]", UINT64_MAX);
    break;
  case CFG_FLOAT:
    range_text(k, range, sizeof(range));
    snprintf(buf, n, "a number %s", range);
    break;
  case CFG_BOOL:
    snprintf(buf, n, "true, false, yes, no, 1 or 0");
    break;
  case CFG_CHOICE:
    snprintf(buf, n, "one of: ");
    choices_text(k->choices, "", buf + strlen(buf), n - strlen(buf));
    break;
  case CFG_PATH:
    if (k->choices)
      snprintf(buf, n, "'%s' or a path", k->choices);
    else
      snprintf(buf, n, "a path");
    break;
  case CFG_NAME:
    snprintf(buf, n, "one name without blanks or commas");
    break;
  case CFG_LIST:
    snprintf(buf, n, "comma-separated names");
    break;
  }
}

/* ---- setting values ---- */

static int dup_text(char **dst, const char *s, size_t len) {
  char *p = malloc(len + 1);
  if (!p) GORP_ERR(GORP_EMEM, "out of memory copying a config value of %zu bytes", len);
  memcpy(p, s, len);
  p[len] = '\0';
  free(*dst);
  *dst = p;
  return GORP_OK;
}

static void list_clear(gorp_config *c, const config_key *k) {
  char ***items = field(c, k->off);
  int *n = field(c, k->off_n);
  for (int i = 0; i < *n; i++) free((*items)[i]);
  free(*items);
  *items = NULL;
  *n = 0;
}

/* Appends the comma-separated, whitespace-trimmed names in text[0..len); empty names (a trailing
 * comma before a continuation line) are skipped, a name with a blank inside ("a b") is refused. */
static int list_append(gorp_config *c, const config_key *k, const char *text, size_t len) {
  char ***items = field(c, k->off);
  int *n = field(c, k->off_n);
  for (const char *p = text, *stop = text + len; p < stop;) {
    const char *end = p;
    while (end < stop && *end != ',') end++;
    const char *a = p, *b = end;
    while (a < b && isspace((unsigned char)*a)) a++;
    while (b > a && isspace((unsigned char)b[-1])) b--;
    for (const char *q = a; q < b; q++)
      if (isspace((unsigned char)*q)) return GORP_EINPUT;
    if (b > a) {
      char **grown = realloc(*items, (size_t)(*n + 1) * sizeof(**items));
      if (!grown) GORP_ERR(GORP_EMEM, "out of memory growing the list %s.%s", k->section, k->key);
      *items = grown;
      grown[*n] = NULL;
      GORP_CALL(dup_text(&grown[*n], a, (size_t)(b - a)));
      (*n)++;
    }
    p = end + 1;
  }
  return GORP_OK;
}

static int has_control(const char *s) {
  for (; *s; s++)
    if (iscntrl((unsigned char)*s)) return 1;
  return 0;
}

static int choice_valid(const char *choices, const char *text) {
  size_t len = strlen(text);
  for (const char *p = choices; *p;) {
    size_t m = strcspn(p, ",");
    if (m == len && !strncmp(p, text, len)) return 1;
    p += m + (p[m] == ',');
  }
  return 0;
}

/* Parses text into k's field of c. Returns GORP_EINPUT for a bad value (the caller names where it
 * came from and says what was expected: expected_text), GORP_EMEM when a copy fails. Control
 * characters are refused everywhere: they would break the canonical text. */
static int set_value(gorp_config *c, const config_key *k, const char *text) {
  if (has_control(text)) return GORP_EINPUT;
  void *dst = field(c, k->off);
  char *end;
  errno = 0;
  switch (k->type) {
  case CFG_INT: {
    long v = strtol(text, &end, 10);
    if (end == text || *end || errno || v < INT_MIN || v > INT_MAX || v < k->lo || v > k->hi)
      return GORP_EINPUT;
    *(int *)dst = (int)v;
    return GORP_OK;
  }
  case CFG_U64: {
    /* strtoull would take "-1" as UINT64_MAX */
    if (!isdigit((unsigned char)text[0])) return GORP_EINPUT;
    unsigned long long v = strtoull(text, &end, 10);
    if (*end || errno) return GORP_EINPUT;
    *(uint64_t *)dst = (uint64_t)v;
    return GORP_OK;
  }
  case CFG_FLOAT: {
    double d = strtod(text, &end);
    float v = (float)d;
    if (end == text || *end || !isfinite(v) || v < k->lo || v > k->hi ||
        ((k->flags & CFG_LO_OPEN) && v == k->lo) || ((k->flags & CFG_HI_OPEN) && v == k->hi))
      return GORP_EINPUT;
    *(float *)dst = v;
    return GORP_OK;
  }
  case CFG_BOOL: {
    static const char *const yes[] = {"true", "yes", "1"}, *const no[] = {"false", "no", "0"};
    for (int i = 0; i < 3; i++) {
      if (!strcasecmp(text, yes[i])) return *(int *)dst = 1, GORP_OK;
      if (!strcasecmp(text, no[i])) return *(int *)dst = 0, GORP_OK;
    }
    return GORP_EINPUT;
  }
  case CFG_CHOICE:
    if (!choice_valid(k->choices, text)) return GORP_EINPUT;
    return dup_text(dst, text, strlen(text));
  case CFG_NAME:
    if (strpbrk(text, ", \t")) return GORP_EINPUT;
    return dup_text(dst, text, strlen(text));
  case CFG_PATH:
    /* only a required path may be empty, and then only until check_required runs */
    if (!text[0] && !(k->flags & CFG_REQUIRED)) return GORP_EINPUT;
    return dup_text(dst, text, strlen(text));
  case CFG_LIST:
    list_clear(c, k);
    return list_append(c, k, text, strlen(text));
  }
  return GORP_EINPUT;
}

/* ---- unknown names: suggest the closest known one ---- */

/* Edit distance of two short names (longer ones are never close to a key). */
static int edit_distance(const char *a, const char *b) {
  enum { MAX = 64 };
  size_t la = strlen(a), lb = strlen(b);
  if (la >= MAX || lb >= MAX) return INT_MAX;
  int row[MAX + 1];
  for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
  for (size_t i = 1; i <= la; i++) {
    int diag = row[0];
    row[0] = (int)i;
    for (size_t j = 1; j <= lb; j++) {
      int up = row[j];
      int best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

/* " (did you mean 'lr'?)", " (did you mean 'seed' in [run]?)", " (did you mean [train]?)" or "".
 * A name in the wrong section costs one edit; at most two edits and half the name's length. */
static void suggestion(const char *section, const char *name, char *buf, size_t n) {
  buf[0] = '\0';
  if (section[0] && !section_known(section)) {
    for (int s = 0; s < N_SECTIONS; s++)
      if (edit_distance(section, sections[s].name) <= 2) {
        snprintf(buf, n, " (did you mean [%s]?)", sections[s].name);
        return;
      }
  }
  int best = -1, best_cost = INT_MAX;
  for (int i = 0; i < N_KEYS; i++) {
    int d = edit_distance(name, keys[i].key);
    int cost = d == INT_MAX ? d : d + (strcmp(section, keys[i].section) != 0);
    if (cost < best_cost) best = i, best_cost = cost;
  }
  if (best < 0 || best_cost > 2 || (size_t)best_cost > strlen(name) / 2) return;
  if (!strcmp(section, keys[best].section))
    snprintf(buf, n, " (did you mean '%s'?)", keys[best].key);
  else
    snprintf(buf, n, " (did you mean '%s' in [%s]?)", keys[best].key, keys[best].section);
}

/* "unknown key 'lrr' in section [train] (did you mean 'lr'?)" and its variants. */
static void unknown_text(const char *section, const char *name, char *buf, size_t n) {
  char hint[128];
  suggestion(section, name, hint, sizeof(hint));
  if (!section[0])
    snprintf(buf, n, "key '%s' comes before any [section]%s", name, hint);
  else if (!section_known(section))
    snprintf(buf, n, "unknown section [%s]%s", section, hint);
  else
    snprintf(buf, n, "unknown key '%s' in section [%s]%s", name, section, hint);
}

/* ---- paths ---- */

/* *out = rel joined to the folder of file, textually (nothing needs to exist yet, "~" is an
 * ordinary name); an absolute rel is copied as it is. */
static int path_join(char **out, const char *file, const char *rel) {
  const char *slash = strrchr(file, '/');
  const size_t dir_len = rel[0] == '/' || !slash ? 0 : (size_t)(slash - file) + 1;
  const size_t len = strlen(rel);
  char *joined = malloc(dir_len + len + 1);
  if (!joined) GORP_ERR(GORP_EMEM, "out of memory joining '%s' to the folder of '%s'", rel, file);
  memcpy(joined, file, dir_len);
  memcpy(joined + dir_len, rel, len + 1);
  free(*out);
  *out = joined;
  return GORP_OK;
}

/* A relative path value (not the keyword of a path-or-keyword key, not an empty one) becomes
 * relative to the folder of the config file that set it. */
static int resolve_path(gorp_config *c, const config_key *k, const char *file) {
  char **value = field(c, k->off);
  if (k->type != CFG_PATH || !(*value)[0] || (*value)[0] == '/') return GORP_OK;
  if (k->choices && !strcmp(*value, k->choices)) return GORP_OK;
  char *joined = NULL;
  GORP_CALL(path_join(&joined, file, *value));
  free(*value);
  *value = joined;
  return GORP_OK;
}

/* ---- reading the INI file ---- */

enum { CONFIG_MSG_MAX = 1024 };

enum { CONFIG_INCLUDE_DEPTH = 8 };

typedef struct parse_state {
  gorp_config *c;
  const char *path;
  const char *text;    /* the whole file, NUL-free */
  size_t len, pos;     /* its length and the reader's position */
  int depth;           /* 0 for the file given to config_load, n for a file included n deep */
  int *from_file;      /* [N_KEYS], shared by nested files: 1 once a file set the key */
  int include_line;    /* line of this file's include; 0 = none */
  int lineno;          /* the line our reader handed to inih last */
  int indented;        /* that line starts with whitespace (an inih continuation line) */
  int prev_key;        /* key of the handler's previous call; -1 after a [section] line */
  int line_of[N_KEYS]; /* line that set each key; 0 = not in the file */
  int err_line, err;   /* first error found by us: its line and code (0 = none) */
  char msg[CONFIG_MSG_MAX];
} parse_state;

static void parse_fail(parse_state *st, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void parse_fail(parse_state *st, int code, const char *fmt, ...) {
  if (st->err_line) return;
  int len = snprintf(st->msg, sizeof(st->msg), "%s:%d: ", st->path, st->lineno);
  if (len < 0 || (size_t)len >= sizeof(st->msg)) len = (int)sizeof(st->msg) - 1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(st->msg + len, sizeof(st->msg) - (size_t)len, fmt, ap);
  va_end(ap);
  st->err_line = st->lineno;
  st->err = code;
}

/* Byte offset of the first NUL in text[0..len) as line:column (1-based), or 0 when none. */
static int nul_position(const char *text, size_t len, int *line, int *col) {
  const char *nul = memchr(text, '\0', len);
  if (!nul) return 0;
  *line = 1;
  *col = 1;
  for (const char *p = text; p < nul; p++) {
    if (*p == '\n')
      (*line)++, *col = 1;
    else
      (*col)++;
  }
  return 1;
}

/* fgets over the file's text for inih, that counts lines and remembers what inih will not tell
 * the handler. */
static char *ini_read_line(char *buf, int n, void *stream) {
  parse_state *st = stream;
  if (st->pos >= st->len || n < 2) return NULL;
  const char *p = st->text + st->pos;
  const size_t avail = st->len - st->pos;
  const char *nl = memchr(p, '\n', avail);
  const size_t line_len = nl ? (size_t)(nl - p) + 1 : avail; /* with its newline */
  const size_t take = line_len < (size_t)n - 1 ? line_len : (size_t)n - 1;
  memcpy(buf, p, take);
  buf[take] = '\0';
  st->pos += line_len; /* the part of a too-long line past take is skipped */
  st->lineno++;
  if (take < line_len) parse_fail(st, GORP_EINPUT, "line longer than %d characters", n - 2);
  st->indented = take && isspace((unsigned char)buf[0]) && buf[0] != '\n' && buf[0] != '\r';
  const char *q = buf;
  while (isspace((unsigned char)*q)) q++;
  if (*q == '[') st->prev_key = -1;
  return buf;
}

static int parse_file(gorp_config *c, const char *path, int depth, int *from_file);

/* `include = FILE` before any [section]: FILE (relative to this file's folder) is read here, so
 * the keys that follow in this file override its values. */
static void include_file(parse_state *st, const char *value) {
  st->prev_key = -1;
  if (st->include_line) {
    parse_fail(st, GORP_EINPUT, "a second include (the first is on line %d); one per file",
               st->include_line);
    return;
  }
  st->include_line = st->lineno;
  if (!value[0] || has_control(value)) {
    parse_fail(st, GORP_EINPUT, "include = %s: expected the path of a config file", value);
    return;
  }
  if (st->depth + 1 >= CONFIG_INCLUDE_DEPTH) {
    parse_fail(st, GORP_EINPUT, "include = %s: includes nest deeper than %d files (a cycle?)",
               value, CONFIG_INCLUDE_DEPTH);
    return;
  }
  char *inc = NULL;
  if (path_join(&inc, st->path, value)) {
    parse_fail(st, GORP_EMEM, "include = %s: out of memory", value);
    return;
  }
  const int ierr = parse_file(st->c, inc, st->depth + 1, st->from_file);
  if (ierr) parse_fail(st, ierr, "in the file included here (%s)", inc);
  free(inc);
}

static int ini_on_value(void *user, const char *section, const char *name, const char *value) {
  parse_state *st = user;
  if (st->err_line) return 1; /* the first error is the one reported */
  if (!section[0] && !strcmp(name, "include")) {
    include_file(st, value);
    return 1;
  }
  int i = key_index(section, name);
  if (i < 0) {
    char what[256];
    unknown_text(section, name, what, sizeof(what));
    parse_fail(st, GORP_EINPUT, "%s", what);
    return 1;
  }
  const config_key *k = &keys[i];
  int ierr;
  if (st->indented && st->prev_key == i) {
    if (k->type != CFG_LIST) {
      parse_fail(st, GORP_EINPUT,
                 "indented line continues the value of %s.%s; only list keys may span lines "
                 "(remove the indentation)",
                 k->section, k->key);
      return 1;
    }
    /* inih r55 cuts "  ; comment" from key lines but not from continuation lines */
    size_t len = 0;
    while (value[len] && !(value[len] == ';' && len && isspace((unsigned char)value[len - 1])))
      len++;
    ierr = has_control(value) ? GORP_EINPUT : list_append(st->c, k, value, len);
  } else {
    st->prev_key = i;
    if (st->line_of[i]) {
      parse_fail(st, GORP_EINPUT, "duplicate key '%s' in section [%s] (first set on line %d)", name,
                 section, st->line_of[i]);
      return 1;
    }
    st->line_of[i] = st->lineno;
    ierr = set_value(st->c, k, value);
  }
  if (ierr) {
    char expected[128];
    expected_text(k, expected, sizeof(expected));
    if (ierr == GORP_EINPUT)
      parse_fail(st, ierr, "%s.%s = %s: expected %s", k->section, k->key, value, expected);
    else
      parse_fail(st, ierr, "%s.%s: out of memory", k->section, k->key);
  }
  return 1;
}

/* The text of line lineno of text, for a message about a line inih could not parse. */
static void line_text(const char *text, int lineno, char *buf, size_t n) {
  const char *p = text;
  for (int i = 1; i < lineno && p; i++) {
    p = strchr(p, '\n');
    if (p) p++;
  }
  if (!p) p = "";
  const size_t len = strcspn(p, "\r\n");
  snprintf(buf, n, "%.*s", (int)(len < n ? len : n - 1), p);
}

static int parse_text(parse_state *st) {
  int line, col;
  if (nul_position(st->text, st->len, &line, &col))
    GORP_ERR(GORP_EINPUT, "%s:%d: NUL byte at column %d; a config file is text", st->path, line,
             col);
  const int bad_line = ini_parse_stream(ini_read_line, st, ini_on_value, st);
  if (bad_line > 0 && (!st->err_line || bad_line < st->err_line)) {
    char text[256];
    line_text(st->text, bad_line, text, sizeof(text));
    GORP_ERR(GORP_EINPUT,
             "%s:%d: cannot parse '%s': expected [section], key = value, or a comment (; or #)",
             st->path, bad_line, text);
  }
  if (bad_line < 0) GORP_ERR(GORP_ELIB, "inih failed reading '%s' (code %d)", st->path, bad_line);
  if (st->err_line) GORP_ERR(st->err, "%s", st->msg);
  return GORP_OK;
}

static int parse_file(gorp_config *c, const char *path, int depth, int *from_file) {
  parse_state st = {.c = c, .path = path, .depth = depth, .from_file = from_file, .prev_key = -1};
  char *text;
  GORP_CALL(fs_read_regular(path, "config file", FS_MAX_CONFIG, &text, &st.len));
  st.text = text;
  const int ierr = parse_text(&st);
  free(text);
  GORP_CALL(ierr);
  for (int i = 0; i < N_KEYS; i++)
    if (st.line_of[i]) {
      GORP_CALL(resolve_path(c, &keys[i], path));
      from_file[i] = 1;
    }
  return GORP_OK;
}

/* ---- overrides, paths, derived values, checks ---- */

static void trim(char **a, char **b) {
  while (*a < *b && isspace((unsigned char)**a)) (*a)++;
  while (*b > *a && isspace((unsigned char)(*b)[-1])) (*b)--;
}

/* Applies "section.key=value" from ov, parsed in buf (a copy of ov that is cut up in place);
 * whitespace around each part is ignored. */
static int apply_override_in(gorp_config *c, const char *ov, char *buf, int *key) {
  char *eq = strchr(buf, '=');
  char *dot = eq ? memchr(buf, '.', (size_t)(eq - buf)) : NULL;
  if (!dot) GORP_ERR(GORP_EINPUT, "bad override '%s': expected section.key=value", ov);
  char *s = buf, *s_end = dot, *k = dot + 1, *k_end = eq, *v = eq + 1, *v_end = eq + strlen(eq);
  trim(&s, &s_end);
  trim(&k, &k_end);
  trim(&v, &v_end);
  if (s == s_end || k == k_end)
    GORP_ERR(GORP_EINPUT, "bad override '%s': expected section.key=value", ov);
  *s_end = *k_end = *v_end = '\0';
  int i = key_index(s, k);
  if (i < 0) {
    char what[256];
    unknown_text(s, k, what, sizeof(what));
    GORP_ERR(GORP_EINPUT, "override '%s': %s", ov, what);
  }
  *key = i;
  int ierr = set_value(c, &keys[i], v);
  if (ierr == GORP_EINPUT) {
    char expected[128];
    expected_text(&keys[i], expected, sizeof(expected));
    GORP_ERR(GORP_EINPUT, "override '%s': %s.%s = %s: expected %s", ov, s, k, v, expected);
  }
  GORP_CALL(ierr);
  return GORP_OK;
}

static int apply_override(gorp_config *c, const char *ov, int *key) {
  char *buf = NULL;
  GORP_CALL(dup_text(&buf, ov, strlen(ov)));
  int ierr = apply_override_in(c, ov, buf, key);
  free(buf);
  return ierr;
}

static int check_required(const gorp_config *c) {
  for (int i = 0; i < N_KEYS; i++) {
    const config_key *k = &keys[i];
    if (!(k->flags & CFG_REQUIRED)) continue;
    if (value_empty(c, k))
      GORP_ERR(GORP_EINPUT, "%s: %s.%s is required (%s); set it in [%s] or with --set %s.%s=...",
               c->file, k->section, k->key, k->doc, k->section, k->section, k->key);
  }
  return GORP_OK;
}

static int check_path_lengths(const gorp_config *c) {
  for (int i = 0; i < N_KEYS; i++) {
    const config_key *k = &keys[i];
    if (k->type != CFG_PATH) continue;
    const size_t len = strlen(*(char *const *)cfield(c, k->off));
    if (len > CONFIG_PATH_MAX)
      GORP_ERR(GORP_EINPUT,
               "%s: %s.%s is a path of %zu bytes (after resolving it against the config's "
               "folder); the limit is %d, so that the file names gorp builds under it fit",
               c->file, k->section, k->key, len, CONFIG_PATH_MAX);
  }
  return GORP_OK;
}

/* Fills model.num_kv_heads and model.head_dim when 0 and checks the heads agree. */
static int derive_arch(gorp_config *c) {
  model_config *a = &c->model.arch;
  const char *origin = c->file ? c->file : "defaults";
  if (!a->num_kv_heads) a->num_kv_heads = a->num_heads;
  if (c->model.embed_init_std == 0.0f) c->model.embed_init_std = c->model.init_std;
  if (!a->head_dim) {
    if (a->hidden_size % a->num_heads)
      GORP_ERR(GORP_EINPUT,
               "%s: model.hidden_size (%d) is not a multiple of model.num_heads (%d), so "
               "model.head_dim cannot default to their ratio; change one or set model.head_dim",
               origin, a->hidden_size, a->num_heads);
    a->head_dim = a->hidden_size / a->num_heads;
  }
  if (a->num_heads % a->num_kv_heads)
    GORP_ERR(GORP_EINPUT, "%s: model.num_heads (%d) must be a multiple of model.num_kv_heads (%d)",
             origin, a->num_heads, a->num_kv_heads);
  /* the same limits as model_config_check, named as this file spells the keys; a model file's
   * own shape (model.init) is checked when it is read */
  if (strcmp(c->model.init, "random")) return GORP_OK;
  if ((int64_t)a->num_heads * a->head_dim > MODEL_MAX_DIM)
    GORP_ERR(GORP_EINPUT,
             "%s: model.num_heads x model.head_dim = %d x %d is over gorp's limit of %d for the "
             "width of the attention",
             origin, a->num_heads, a->head_dim, MODEL_MAX_DIM);
  model_config shape = *a;
  if (!shape.vocab_size) shape.vocab_size = 1; /* the tokenizer's: not known yet */
  uint64_t n;
  if (!model_config_params(&shape, &n) || n > MODEL_MAX_PARAMS)
    GORP_ERR(GORP_EINPUT,
             "%s: model.num_layers = %d with model.hidden_size = %d and model.intermediate_size = "
             "%d is over gorp's limit of %llu (2^40) parameters",
             origin, a->num_layers, a->hidden_size, a->intermediate_size,
             (unsigned long long)MODEL_MAX_PARAMS);
  if (a->max_seq <= c->eval.max_new_tokens)
    GORP_ERR(GORP_EINPUT,
             "%s: model.max_seq = %d must be larger than eval.max_new_tokens = %d: an evaluation "
             "prompt and its answer share the model's positions",
             origin, a->max_seq, c->eval.max_new_tokens);
  return GORP_OK;
}

/* The line of an orders file that names order, as a list of dataset names in c->data.tasks. */
static int read_order(gorp_config *c) {
  const char *path = c->data.orders, *name = c->data.order;
  char *text;
  size_t len;
  GORP_CALL(fs_read_regular(path, "data.orders", FS_MAX_ORDERS, &text, &len));
  int line, col;
  if (nul_position(text, len, &line, &col)) {
    free(text);
    GORP_ERR(GORP_EINPUT, "data.orders: %s:%d: NUL byte at column %d; an orders file is text", path,
             line, col);
  }
  const config_key *k = &keys[key_index("data", "tasks")];
  char known[1024] = "";
  int found = 0, ierr = GORP_OK;
  for (char *p = text, *next; !found && p < text + len; p = next) {
    char *eol = strchr(p, '\n');
    next = eol ? eol + 1 : text + len;
    if (eol) *eol = '\0';
    p += strspn(p, " \t");
    if (*p == '#' || *p == '\r' || !*p) continue;
    size_t n = strcspn(p, " \t\r");
    if (n == strlen(name) && !strncmp(p, name, n)) {
      found = 1;
      /* the rest of the line: names separated by blanks */
      for (char *q = p + n; *q; q++)
        if (*q == ' ' || *q == '\t') *q = ',';
      list_clear(c, k);
      ierr = list_append(c, k, p + n, strcspn(p + n, "\r"));
      if (ierr == GORP_EINPUT)
        ierr = GORP_ERROR(GORP_EINPUT,
                          "data.orders: %s: the line of order %s holds a name that is not a "
                          "dataset name",
                          path, name);
    } else if (strlen(known) + n + 3 < sizeof(known)) {
      snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%.*s", known[0] ? ", " : "",
               (int)n, p);
    }
  }
  free(text);
  GORP_CALL(ierr);
  if (!found)
    GORP_ERR(GORP_EINPUT, "%s: data.order = %s is not in the orders file %s (it has: %s)", c->file,
             name, path, known[0] ? known : "no orders");
  if (!c->data.n_tasks) GORP_ERR(GORP_EINPUT, "%s: order %s lists no datasets", path, name);
  return GORP_OK;
}

/* Applies one train.per_task entry "dataset:key=value" to t when it names dataset (NULL: any).
 * GORP_EINPUT for a malformed entry, an unknown key or a value out of the [train] key's range. */
static int per_task_apply(const char *entry, const char *dataset, task_train *t) {
  const char *colon = strchr(entry, ':'), *eq = colon ? strchr(colon, '=') : NULL;
  if (!colon || colon == entry || !eq || eq == colon + 1 || !eq[1]) return GORP_EINPUT;
  if (dataset && (strlen(dataset) != (size_t)(colon - entry) ||
                  strncmp(entry, dataset, (size_t)(colon - entry))))
    return GORP_OK;
  static const struct {
    const char *key;
    size_t off;
  } slots[] = {{"epochs", offsetof(task_train, epochs)},
               {"batch_size", offsetof(task_train, batch_size)},
               {"max_steps", offsetof(task_train, max_steps)},
               {"lr", offsetof(task_train, lr)}};
  for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
    const size_t n = strlen(slots[i].key);
    if ((size_t)(eq - colon - 1) != n || strncmp(colon + 1, slots[i].key, n)) continue;
    /* parse through the [train] key of the same name: same type and range */
    gorp_config scratch = {0};
    const config_key *k = &keys[key_index("train", slots[i].key)];
    if (set_value(&scratch, k, eq + 1)) return GORP_EINPUT;
    memcpy((char *)t + slots[i].off, cfield(&scratch, k->off),
           k->type == CFG_FLOAT ? sizeof(float) : sizeof(int));
    return GORP_OK;
  }
  return GORP_EINPUT;
}

void config_task_train(const gorp_config *c, const char *dataset, task_train *t) {
  *t = (task_train){.epochs = c->train.epochs,
                    .batch_size = c->train.batch_size,
                    .max_steps = c->train.max_steps,
                    .lr = c->train.lr};
  for (int i = 0; i < c->train.n_per_task; i++) per_task_apply(c->train.per_task[i], dataset, t);
}

static int check_per_task(const gorp_config *c) {
  const char *origin = c->file ? c->file : "defaults";
  for (int i = 0; i < c->train.n_per_task; i++) {
    const char *e = c->train.per_task[i];
    task_train t;
    if (per_task_apply(e, NULL, &t))
      GORP_ERR(GORP_EINPUT,
               "%s: train.per_task entry '%s': expected dataset:key=value with key one of epochs, "
               "batch_size, max_steps, lr and a value allowed for train.<key>",
               origin, e);
    int known = 0;
    for (int k = 0; k < c->data.n_tasks; k++)
      known |= strlen(c->data.tasks[k]) == (size_t)(strchr(e, ':') - e) &&
               !strncmp(e, c->data.tasks[k], (size_t)(strchr(e, ':') - e));
    if (!known)
      GORP_ERR(GORP_EINPUT, "%s: train.per_task entry '%s' names a dataset that is not a task",
               origin, e);
  }
  return GORP_OK;
}

/* data.tasks from data.order when given, then data.substitute; every name at most once. */
static int resolve_tasks(gorp_config *c) {
  const char *origin = c->file ? c->file : "defaults";
  if (!strcmp(c->data.format, "clbench")) {
    if (!strcmp(c->data.root, "none"))
      GORP_ERR(GORP_EINPUT,
               "%s: data.root is required (the benchmark folder) for data.format = "
               "clbench; set it in [data] or with --set data.root=...",
               origin);
    if (!strcmp(c->data.instructions, "none"))
      GORP_ERR(GORP_EINPUT,
               "%s: data.instructions is required (instruction_config.json) for "
               "data.format = clbench; set it in [data] or with --set data.instructions=...",
               origin);
  }
  if (c->data.order[0]) {
    if (c->data.n_tasks)
      GORP_ERR(GORP_EINPUT, "%s: give data.tasks or data.order (%s), not both", origin,
               c->data.order);
    if (!strcmp(c->data.orders, "none") && !strcmp(c->data.format, "synthetic")) {
      const char *const *names;
      int n;
      if (synth_order(c->data.order, &names, &n))
        GORP_ERR(GORP_EINPUT, "%s: data.order = %s is not one of the synthetic suite's orders",
                 origin, c->data.order);
      const config_key *k = &keys[key_index("data", "tasks")];
      for (int i = 0; i < n; i++) GORP_CALL(list_append(c, k, names[i], strlen(names[i])));
    } else if (!strcmp(c->data.orders, "none")) {
      GORP_ERR(GORP_EINPUT, "%s: data.order = %s needs data.orders (the orders file)", origin,
               c->data.order);
    } else {
      GORP_CALL(read_order(c));
    }
  }
  if (!c->data.n_tasks)
    GORP_ERR(GORP_EINPUT,
             "%s: data.tasks or data.order is required (the datasets to train on, in order)",
             origin);
  for (int s = 0; s < c->data.n_substitute; s++) {
    const char *rule = c->data.substitute[s], *eq = strchr(rule, '=');
    if (!eq || eq == rule || strchr(eq + 1, '='))
      GORP_ERR(GORP_EINPUT, "%s: data.substitute: '%s' is not of the form old=new (or old=)",
               origin, rule);
    int hit = 0;
    for (int t = 0; t < c->data.n_tasks; t++) {
      char *name = c->data.tasks[t];
      if (strlen(name) != (size_t)(eq - rule) || strncmp(name, rule, (size_t)(eq - rule))) continue;
      hit = 1;
      if (eq[1]) {
        GORP_CALL(dup_text(&c->data.tasks[t], eq + 1, strlen(eq + 1)));
      } else { /* old= removes the task: every dataset of orders 4-6 is in the order already */
        free(name);
        memmove(&c->data.tasks[t], &c->data.tasks[t + 1],
                (size_t)(c->data.n_tasks - t - 1) * sizeof(char *));
        c->data.n_tasks--;
        break;
      }
    }
    if (!c->data.n_tasks) GORP_ERR(GORP_EINPUT, "%s: data.substitute removed every task", origin);
    if (!hit)
      GORP_ERR(GORP_EINPUT, "%s: data.substitute: '%.*s' is not one of the tasks", origin,
               (int)(eq - rule), rule);
  }
  for (int a = 0; a < c->data.n_tasks; a++)
    for (int b = a + 1; b < c->data.n_tasks; b++)
      if (!strcmp(c->data.tasks[a], c->data.tasks[b]))
        GORP_ERR(GORP_EINPUT, "%s: dataset %s appears twice in the task order", origin,
                 c->data.tasks[a]);
  return GORP_OK;
}

static int fill_defaults(gorp_config *c) {
  memset(c, 0, sizeof(*c));
  for (int i = 0; i < N_KEYS; i++)
    if (set_value(c, &keys[i], keys[i].def)) /* a broken schema row: test_config catches it */
      GORP_ERR(GORP_EINPUT, "config schema: bad default '%s' for %s.%s", keys[i].def,
               keys[i].section, keys[i].key);
  return GORP_OK;
}

/* ---- public ---- */

int config_defaults(gorp_config *c) {
  int ierr = fill_defaults(c);
  if (!ierr) ierr = derive_arch(c);
  if (ierr) config_free(c);
  return ierr;
}

static int load(gorp_config *c, const char *path, char *const *overrides, int n_overrides) {
  GORP_CALL(fill_defaults(c));
  GORP_CALL(dup_text(&c->file, path, strlen(path)));
  int from_file[N_KEYS] = {0};
  GORP_CALL(parse_file(c, path, 0, from_file));
  /* defaults and overridden paths are relative to the config given on the command line */
  for (int i = 0; i < n_overrides; i++) {
    int key = 0;
    GORP_CALL(apply_override(c, overrides[i], &key));
    from_file[key] = 0;
  }
  for (int i = 0; i < N_KEYS; i++)
    if (!from_file[i]) GORP_CALL(resolve_path(c, &keys[i], path));
  GORP_CALL(check_path_lengths(c));
  GORP_CALL(check_required(c));
  GORP_CALL(derive_arch(c));
  GORP_CALL(resolve_tasks(c));
  GORP_CALL(check_per_task(c));
  return GORP_OK;
}

int config_load(gorp_config *c, const char *path, char *const *overrides, int n_overrides) {
  int ierr = load(c, path, overrides, n_overrides);
  if (ierr) config_free(c);
  return ierr;
}

void config_free(gorp_config *c) {
  for (int i = 0; i < N_KEYS; i++) {
    const config_key *k = &keys[i];
    if (k->type == CFG_LIST)
      list_clear(c, k);
    else if (k->type == CFG_PATH || k->type == CFG_CHOICE || k->type == CFG_NAME)
      free(*(char **)field(c, k->off));
  }
  free(c->file);
  memset(c, 0, sizeof(*c));
}

/* ---- canonical text and hash ---- */

/* Which keys each scope covers (docs/CONFIG.md "What the hashes cover"), by name so that the key
 * table above stays one line per key. The rule: a key enters the run hash when an uninterrupted
 * gorp run's results depend on it. A key in neither of the first two lists is in the run hash
 * and a resume refuses any change of it, so a new key is safe by default. */

/* gorp run's results do not depend on these: where results go, how often it logs and saves, how
 * many prompts evaluation decodes together (the predictions are the same), whether backward
 * recomputes the layers (the same numbers bit for bit), the rank layout (a
 * checkpoint holds logical tensors), the orders file and the substitutions (their outcome is
 * data.tasks, which is hashed) and what only gorp pretrain reads. */
static const char *const outside_run[] = {
    "run.out_dir",         "run.name",        "run.checkpoint_every",
    "run.checkpoint_keep", "run.log_every",   "data.order",
    "data.orders",         "data.substitute", "eval.batch_size",
    "train.recompute",     "parallel.tp",     "parallel.dp",
    "pretrain.out",        "pretrain.steps",  "pretrain.batch_size",
    "pretrain.lr",         "pretrain.warmup", "pretrain.min_lr_ratio"};

/* In the run hash, but they say where an input lies or which backend rounds the sums: a resume
 * accepts a change with --force-config (the data moved; the user vouches that it is the same). */
static const char *const run_force[] = {"run.backend",    "model.init",
                                        "data.root",      "data.instructions",
                                        "data.tokenizer", "data.chat_template"};

/* What gorp pretrain reads (the base model is a function of these and the synthetic suite's
 * version): its reuse key of pretrain.out. */
static const char *const pretrain_in[] = {"run.seed",
                                          "data.format",
                                          "model.hidden_size",
                                          "model.intermediate_size",
                                          "model.num_layers",
                                          "model.num_heads",
                                          "model.num_kv_heads",
                                          "model.head_dim",
                                          "model.max_seq",
                                          "model.rms_eps",
                                          "model.rope_theta",
                                          "model.tie_embeddings",
                                          "model.init_std",
                                          "model.embed_init_std",
                                          "train.beta1",
                                          "train.beta2",
                                          "train.eps",
                                          "train.weight_decay",
                                          "train.grad_clip",
                                          "pretrain.steps",
                                          "pretrain.batch_size",
                                          "pretrain.lr",
                                          "pretrain.warmup",
                                          "pretrain.min_lr_ratio"};

#define N_OF(list) (sizeof(list) / sizeof((list)[0]))

/* "section.key" is k. */
static int names_key(const char *name, const config_key *k) {
  const size_t n = strlen(k->section);
  return !strncmp(name, k->section, n) && name[n] == '.' && !strcmp(name + n + 1, k->key);
}

static int listed(const config_key *k, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (names_key(list[i], k)) return 1;
  return 0;
}

static int in_scope(const config_key *k, config_scope scope) {
  switch (scope) {
  case CONFIG_RUN:
    return !listed(k, outside_run, N_OF(outside_run));
  case CONFIG_PRETRAIN:
    return listed(k, pretrain_in, N_OF(pretrain_in));
  case CONFIG_ALL:
    break;
  }
  return 1;
}

config_resume config_key_resume(const char *name) {
  for (int i = 0; i < N_KEYS; i++) {
    if (!names_key(name, &keys[i])) continue;
    if (listed(&keys[i], outside_run, N_OF(outside_run))) return CONFIG_RESUME_ANY;
    return listed(&keys[i], run_force, N_OF(run_force)) ? CONFIG_RESUME_FORCE : CONFIG_RESUME_NEVER;
  }
  return CONFIG_RESUME_NEVER;
}

/* p made absolute with symbolic links, "." and ".." resolved, so that one file named two ways (a
 * relative path from another working directory, through a link) has one spelling: realpath of
 * the longest prefix that exists, then the rest appended component by component (it holds no
 * links: it does not exist yet, e.g. a run directory to be made). 0 when not even the working
 * directory resolves or the result does not fit. */
static int canonical_path(const char *p, char *out, size_t n) {
  char head[PATH_MAX], real[PATH_MAX];
  const size_t len = strlen(p);
  if (!len || len >= sizeof(head)) return 0;
  memcpy(head, p, len + 1);
  size_t rest = len; /* p + rest: the components not found on disk */
  while (!realpath(head[0] ? head : ".", real)) {
    if (!head[0] || !strcmp(head, "/")) return 0;
    char *slash = strrchr(head, '/');
    rest = slash ? (size_t)(slash - head) : 0;
    if (slash == head)
      head[1] = '\0';
    else if (slash)
      *slash = '\0';
    else
      head[0] = '\0';
  }
  size_t m = strlen(real);
  if (m >= n) return 0;
  memcpy(out, real, m + 1);
  for (const char *c = p + rest; *c;) {
    c += strspn(c, "/");
    const size_t cl = strcspn(c, "/");
    if (cl == 2 && !strncmp(c, "..", 2)) {
      char *up = strrchr(out, '/');
      m = up == out ? 1 : (size_t)(up - out);
      out[m] = '\0';
    } else if (cl && !(cl == 1 && c[0] == '.')) {
      const int sep = out[m - 1] != '/';
      if (m + sep + cl >= n) return 0;
      if (sep) out[m++] = '/';
      memcpy(out + m, c, cl);
      m += cl;
      out[m] = '\0';
    }
    c += cl;
  }
  return 1;
}

/* Collects text (when buf is used) and its FNV-1a hash in one pass, so that hashing needs no
 * allocation. */
typedef struct text_sink {
  char *buf; /* NULL: hash only */
  size_t len, cap;
  uint64_t hash;
  int oom;
} text_sink;

static void sink_put(text_sink *s, const char *p) {
  size_t n = strlen(p);
  for (size_t i = 0; i < n; i++) s->hash = (s->hash ^ (unsigned char)p[i]) * 0x100000001b3ULL;
  if (!s->buf || s->oom) return;
  if (s->len + n + 1 > s->cap) {
    size_t cap = 2 * (s->len + n + 1);
    char *grown = realloc(s->buf, cap);
    if (!grown) {
      s->oom = 1;
      return;
    }
    s->buf = grown;
    s->cap = cap;
  }
  memcpy(s->buf + s->len, p, n + 1);
  s->len += n;
}

/* Shortest decimal that reads back as the same float, so that 1e-3 prints as 0.001; whole numbers
 * print without an exponent (10000, not 1e+04). */
static void format_float(float v, char *buf, size_t n) {
  if (v == truncf(v) && fabsf(v) < 1e9f) {
    snprintf(buf, n, "%.0f", (double)v);
    return;
  }
  for (int digits = 1; digits <= 9; digits++) {
    snprintf(buf, n, "%.*g", digits, (double)v);
    if (strtof(buf, NULL) == v) return;
  }
}

static void sink_value(text_sink *s, const gorp_config *c, const config_key *k) {
  char num[64];
  const void *src = cfield(c, k->off);
  switch (k->type) {
  case CFG_INT:
    snprintf(num, sizeof(num), "%d", *(const int *)src);
    break;
  case CFG_U64:
    snprintf(num, sizeof(num), "%" PRIu64, *(const uint64_t *)src);
    break;
  case CFG_FLOAT:
    format_float(*(const float *)src, num, sizeof(num));
    break;
  case CFG_BOOL:
    snprintf(num, sizeof(num), "%s", *(const int *)src ? "true" : "false");
    break;
  case CFG_PATH: {
    const char *path = *(char *const *)src;
    char real[PATH_MAX];
    const int keyword = k->choices && !strcmp(path, k->choices);
    sink_put(s, !keyword && canonical_path(path, real, sizeof(real)) ? real : path);
    return;
  }
  case CFG_CHOICE:
  case CFG_NAME:
    sink_put(s, *(char *const *)src);
    return;
  case CFG_LIST: {
    char *const *items = *(char **const *)src;
    int n = *(const int *)cfield(c, k->off_n);
    for (int i = 0; i < n; i++) {
      if (i) sink_put(s, ", ");
      sink_put(s, items[i]);
    }
    return;
  }
  }
  sink_put(s, num);
}

static void sink_config(text_sink *s, const gorp_config *c, config_scope scope) {
  int first = 1;
  for (int sec = 0; sec < N_SECTIONS; sec++) {
    int any = 0;
    for (int i = 0; i < N_KEYS; i++) {
      if (strcmp(keys[i].section, sections[sec].name) || !in_scope(&keys[i], scope)) continue;
      if (!any) {
        sink_put(s, first ? "[" : "\n[");
        sink_put(s, sections[sec].name);
        sink_put(s, "]\n");
        any = 1;
        first = 0;
      }
      sink_put(s, keys[i].key);
      sink_put(s, " =");
      if (!value_empty(c, &keys[i])) {
        sink_put(s, " ");
        sink_value(s, c, &keys[i]);
      }
      sink_put(s, "\n");
    }
  }
}

int config_scope_text(const gorp_config *c, config_scope scope, char **text) {
  text_sink s = {.hash = 0xcbf29ce484222325ULL};
  GORP_ALLOC(s.buf, 256, "the config text");
  s.cap = 256;
  sink_config(&s, c, scope);
  if (s.oom) {
    free(s.buf);
    GORP_ERR(GORP_EMEM, "out of memory writing the config text");
  }
  *text = s.buf;
  return GORP_OK;
}

uint64_t config_scope_hash(const gorp_config *c, config_scope scope) {
  text_sink s = {.hash = 0xcbf29ce484222325ULL};
  sink_config(&s, c, scope);
  return s.hash;
}

int config_to_text(const gorp_config *c, char **text) {
  return config_scope_text(c, CONFIG_ALL, text);
}

uint64_t config_hash(const gorp_config *c) {
  return config_scope_hash(c, CONFIG_ALL);
}

/* The line after line (or the end). */
static const char *next_line(const char *line, size_t *len) {
  const char *end = strchr(line, '\n');
  *len = end ? (size_t)(end - line) : strlen(line);
  return line + *len + (end != NULL);
}

/* In text, the "key = ..." line of section.key: its value (and length), or NULL. */
static const char *text_value(const char *text, const char *section, size_t sec_len,
                              const char *key, size_t key_len, size_t *value_len) {
  const char *sec = "";
  size_t sl = 0, len;
  for (const char *line = text, *next; *line; line = next) {
    next = next_line(line, &len);
    if (line[0] == '[') {
      sec = line + 1;
      sl = len >= 2 ? len - 2 : 0;
    } else if (sl == sec_len && !strncmp(sec, section, sl) && len >= key_len + 2 &&
               !strncmp(line, key, key_len) && line[key_len] == ' ' && line[key_len + 1] == '=') {
      const char *v = line + key_len + 2 + (line[key_len + 2] == ' ');
      *value_len = len - (size_t)(v - line);
      return v;
    }
  }
  return NULL;
}

int config_text_get(const char *text, const char *name, char *out, size_t n) {
  const char *dot = strchr(name, '.');
  size_t len = 0;
  const char *v =
      dot ? text_value(text, name, (size_t)(dot - name), dot + 1, strlen(dot + 1), &len) : NULL;
  if (!v || len >= n) return 0;
  memcpy(out, v, len);
  out[len] = '\0';
  return 1;
}

int config_text_diff(const char *now, const char *was, void (*fn)(const config_change *, void *),
                     void *arg) {
  const char *sec = "";
  size_t sl = 0, len;
  int n = 0;
  /* a key that `was` lacks comes from a gorp older than the key, which behaved as its default */
  char *defaults = NULL;
  gorp_config d;
  if (!config_defaults(&d)) {
    if (config_to_text(&d, &defaults)) defaults = NULL;
    config_free(&d);
  }
  for (const char *line = now, *next; *line; line = next) {
    next = next_line(line, &len);
    if (line[0] == '[') {
      sec = line + 1;
      sl = len >= 2 ? len - 2 : 0;
      continue;
    }
    if (!len) continue;
    const size_t kl = strcspn(line, " =\n");
    config_change ch = {.now = line + kl + 2 + (line[kl + 2] == ' ')};
    ch.now_len = (int)(len - (size_t)(ch.now - line));
    size_t was_len = 0;
    ch.was = text_value(was, sec, sl, line, kl, &was_len);
    ch.was_len = (int)was_len;
    if (ch.was && ch.was_len == ch.now_len && !strncmp(ch.was, ch.now, was_len)) continue;
    size_t def_len = 0;
    const char *def =
        !ch.was && defaults ? text_value(defaults, sec, sl, line, kl, &def_len) : NULL;
    if (def && (int)def_len == ch.now_len && !strncmp(def, ch.now, def_len)) continue;
    snprintf(ch.key, sizeof(ch.key), "%.*s.%.*s", (int)sl, sec, (int)kl, line);
    if (fn) fn(&ch, arg);
    n++;
  }
  free(defaults);
  return n;
}

/* ---- docs ---- */

static void md_cell(FILE *f, const char *text) {
  for (const char *p = text; *p; p++) {
    if (*p == '|') fputc('\\', f);
    fputc(*p, f);
  }
}

static void md_type(FILE *f, const config_key *k) {
  char text[128];
  switch (k->type) {
  case CFG_INT:
  case CFG_FLOAT:
    range_text(k, text, sizeof(text));
    fprintf(f, "%s %s", k->type == CFG_INT ? "int" : "float", text);
    break;
  case CFG_U64:
    fputs("uint64", f);
    break;
  case CFG_BOOL:
    fputs("bool", f);
    break;
  case CFG_CHOICE:
    choices_text(k->choices, "`", text, sizeof(text));
    fprintf(f, "one of %s", text);
    break;
  case CFG_NAME:
    fputs("name", f);
    break;
  case CFG_PATH:
    fputs("path", f);
    if (k->choices) fprintf(f, " or `%s`", k->choices);
    break;
  case CFG_LIST:
    fputs("list", f);
    break;
  }
}

int config_schema_markdown(FILE *f) {
  for (int sec = 0; sec < N_SECTIONS; sec++) {
    fprintf(f, "%s## [%s]\n\n%s\n\n", sec ? "\n" : "", sections[sec].name, sections[sec].doc);
    fputs("| key | type | default | meaning |\n|---|---|---|---|\n", f);
    for (int i = 0; i < N_KEYS; i++) {
      const config_key *k = &keys[i];
      if (strcmp(k->section, sections[sec].name)) continue;
      fprintf(f, "| `%s.%s` | ", k->section, k->key);
      md_type(f, k);
      fputs(" | ", f);
      if (k->flags & CFG_REQUIRED)
        fputs("required", f);
      else
        fprintf(f, "`%s`", k->def);
      fputs(" | ", f);
      md_cell(f, k->doc);
      fputs(" |\n", f);
    }
  }
  if (ferror(f)) GORP_ERR(GORP_EIO, "cannot write the config schema: %s", strerror(errno));
  return GORP_OK;
}

/* One "- **title**: `a.b`, `c.d`." line; a name that is no key is a slip in the lists above. */
static int md_list(FILE *f, const char *title, const char *const *list, size_t n) {
  fprintf(f, "- **%s**: ", title);
  for (size_t i = 0; i < n; i++) {
    int known = 0;
    for (int k = 0; k < N_KEYS && !known; k++) known = names_key(list[i], &keys[k]);
    if (!known) GORP_ERR(GORP_EINPUT, "config.c: '%s' in a hash list is not a config key", list[i]);
    fprintf(f, "%s`%s`", i ? ", " : "", list[i]);
  }
  fputs(".\n", f);
  return GORP_OK;
}

int config_scope_markdown(FILE *f) {
  GORP_CALL(md_list(f, "Outside the run hash (a resume accepts any value)", outside_run,
                    N_OF(outside_run)));
  GORP_CALL(md_list(f, "In the run hash, a change resumes only with `--force-config`", run_force,
                    N_OF(run_force)));
  fputs("- **In the run hash, a change is refused**: every other key.\n", f);
  GORP_CALL(md_list(f, "In the pretrain key", pretrain_in, N_OF(pretrain_in)));
  if (ferror(f)) GORP_ERR(GORP_EIO, "cannot write the config schema: %s", strerror(errno));
  return GORP_OK;
}
