"""50 AdamW steps on a fixed batch (weight decay, gradient clipping by global norm): gorp's loss
trajectory equals torch.optim.AdamW + clip_grad_norm_ on the reference model within 1e-4 relative
at every step."""
import os
import sys
import tempfile

import h5py
import torch

sys.path.insert(0, os.path.dirname(__file__))
import llama_ref as ref  # noqa: E402

STEPS = 50
HP = dict(lr=3e-3, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1, grad_clip=0.5)


def main():
    torch.set_num_threads(1)
    cfg = ref.Config(53, 48, 136, 2, 6, 2)
    model = ref.make_model(cfg, seed=11)
    gen = torch.Generator().manual_seed(3)
    ids = torch.randint(0, cfg.vocab_size, (4, 21), generator=gen)
    targets = ref.next_token_targets(ids)
    targets[:, :8] = -1  # answer-masked, as in fine-tuning
    with tempfile.TemporaryDirectory() as work:
        ref.save_hf(model, os.path.join(work, "hf"))
        h5 = os.path.join(work, "m.h5")
        ref.gorp("import-hf", os.path.join(work, "hf"), h5)
        ref.write_ids(os.path.join(work, "ids"), ids)
        ref.write_ids(os.path.join(work, "tgt"), targets)
        ref.gorp("fit", "--model", h5, "--tokens", os.path.join(work, "ids"), "--targets",
                 os.path.join(work, "tgt"), "--steps", str(STEPS), "--lr", str(HP["lr"]),
                 "--beta1", str(HP["beta1"]), "--beta2", str(HP["beta2"]), "--eps",
                 str(HP["eps"]), "--weight-decay", str(HP["weight_decay"]), "--grad-clip",
                 str(HP["grad_clip"]), "--out", os.path.join(work, "fit.h5"))
        with h5py.File(os.path.join(work, "fit.h5"), "r") as f:
            ours = f["losses"][...]

    opt = torch.optim.AdamW(model.parameters(), lr=HP["lr"], betas=(HP["beta1"], HP["beta2"]),
                            eps=HP["eps"], weight_decay=HP["weight_decay"])
    worst, clipped = 0.0, 0
    for step in range(STEPS):
        opt.zero_grad()
        loss = ref.masked_loss(model(ids), targets)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), HP["grad_clip"])
        clipped += int(norm.item() > HP["grad_clip"])
        opt.step()
        rel = abs(ours[step] - loss.item()) / abs(loss.item())
        worst = max(worst, rel)
        if step % 10 == 0 or step == STEPS - 1:
            print(f"step {step + 1:3d} torch {loss.item():.6f} gorp {ours[step]:.6f} rel {rel:.1e}")
    ok_traj = worst <= 1e-4
    ok_learn = ours[-1] < 0.5 * ours[0]
    print(f"{'PASS' if ok_traj else 'FAIL'} worst relative loss difference {worst:.2e} (<= 1e-4); "
          f"clipping active on {clipped} of {STEPS} steps")
    print(f"{'PASS' if ok_learn else 'FAIL'} loss fell from {ours[0]:.4f} to {ours[-1]:.4f}")
    n_fail = (not ok_traj) + (not ok_learn)
    print(f"{2 - n_fail} passed, {n_fail} failed")
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())
