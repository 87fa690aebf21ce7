"""gorp's LLaMA forward and backward against an independent PyTorch reference (llama_ref.py):
tiny random models (tied and untied heads, grouped-query attention, sizes that are not powers of
two, 2-3 layers, F32/F16/BF16 safetensors) are written as Hugging Face directories, imported with
`gorp import-hf`, and compared on logits, loss, and every parameter gradient of one backward pass
(max |diff| / max |ref| per tensor), with next-token and with answer-masked targets.

Tolerances are about 10x what was measured on these cases (fixed seeds), so that a dropped term
or a wrong scale in any backward fails: logits max abs diff 1.6e-6 measured (2e-5 allowed), loss
relative 6.5e-8 (1e-6 allowed), worst gradient 1.7e-6 of max |ref| (2e-5 allowed)."""
import os
import sys
import tempfile
import zlib

import h5py
import torch

sys.path.insert(0, os.path.dirname(__file__))
import llama_ref as ref  # noqa: E402

# the measured worst cases times ~10 (see the docstring)
TOL_LOGITS, TOL_LOSS, TOL_GRAD = 2e-5, 1e-6, 2e-5

CASES = [
    # name, config, weight dtype in the safetensors file
    ("untied_mha_48x6", ref.Config(61, 48, 136, 2, 6, 6), torch.float32),
    ("tied_gqa_48x6kv2", ref.Config(50, 48, 136, 3, 6, 2, tie_word_embeddings=True),
     torch.float32),
    ("untied_gqa_32x4kv1_bf16", ref.Config(37, 32, 88, 2, 4, 1, rope_theta=500000.0),
     torch.bfloat16),
    ("tied_mha_40x5_f16", ref.Config(45, 40, 100, 2, 5, 5, tie_word_embeddings=True,
                                     rms_norm_eps=1e-6), torch.float16),
]

checks = ref.Checks()
report = checks.report


def masked_targets(ids, gen):
    """Loss only on a random suffix of each sequence (like answer tokens after a prompt)."""
    t = ref.next_token_targets(ids)
    for row in range(ids.shape[0]):
        start = int(torch.randint(1, ids.shape[1] - 2, (1,), generator=gen))
        t[row, :start] = -1
    return t


def run_case(name, cfg, dtype, work):
    # a fixed seed per case: Python randomises hash() of a str per process
    model = ref.make_model(cfg, seed=zlib.crc32(name.encode()) % 1000)
    hf_dir = os.path.join(work, name)
    ref.save_hf(model, hf_dir, dtype)
    h5 = os.path.join(work, name + ".h5")
    ref.gorp("import-hf", hf_dir, h5)

    gen = torch.Generator().manual_seed(5)
    ids = torch.randint(0, cfg.vocab_size, (3, 19), generator=gen)
    ids_path = os.path.join(work, name + ".ids")
    ref.write_ids(ids_path, ids)

    # logits and next-token loss
    out = os.path.join(work, name + ".logits.h5")
    ref.gorp("logits", "--model", h5, "--tokens", ids_path, "--out", out)
    with torch.no_grad():
        logits_ref = model(ids)
        loss_ref = ref.masked_loss(logits_ref, ref.next_token_targets(ids)).item()
    with h5py.File(out, "r") as f:
        logits = torch.from_numpy(f["logits"][...])
        loss = float(f["loss"][0])
    diff = (logits - logits_ref).abs().max().item()
    report(diff <= TOL_LOGITS, f"{name}: logits max abs diff {diff:.2e} (<= {TOL_LOGITS})")
    rel = abs(loss - loss_ref) / abs(loss_ref)
    report(rel <= TOL_LOSS, f"{name}: loss {loss:.6f} vs torch {loss_ref:.6f} (rel {rel:.1e})")

    # gradients, next-token targets and answer-masked targets
    for tname, targets in (("next-token", ref.next_token_targets(ids)),
                           ("answer-masked", masked_targets(ids, gen))):
        tgt_path = os.path.join(work, f"{name}.{tname}.tgt")
        ref.write_ids(tgt_path, targets)
        out = os.path.join(work, f"{name}.{tname}.grad.h5")
        ref.gorp("grad", "--model", h5, "--tokens", ids_path, "--targets", tgt_path, "--out", out)
        model.zero_grad()
        loss_ref = ref.masked_loss(model(ids), targets)
        loss_ref.backward()
        worst, worst_name = 0.0, ""
        with h5py.File(out, "r") as f:
            loss = float(f["loss"][0])
            params = model.hf_state_dict()
            seen = set(f["grad"].keys())
            report(seen == set(params), f"{name} {tname}: gradient tensor names match HF names")
            for pname, p in params.items():
                g = torch.from_numpy(f["grad"][pname][...]).reshape(p.shape)
                scale = p.grad.abs().max().item()
                err = (g - p.grad).abs().max().item() / scale
                if err > worst:
                    worst, worst_name = err, pname
        report(worst <= TOL_GRAD, f"{name} {tname}: worst gradient rel error {worst:.2e} "
               f"({worst_name}) over {len(params)} tensors (<= {TOL_GRAD})")
        rel = abs(loss - loss_ref.item()) / abs(loss_ref.item())
        report(rel <= TOL_LOSS, f"{name} {tname}: loss rel diff {rel:.1e}")


def main():
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as work:
        for name, cfg, dtype in CASES:
            run_case(name, cfg, dtype, work)
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
