"""The rank-k projected Adam against an independent numpy implementation in float64: 30 steps with
a refresh every 10 (the initial SVD and two refreshes), for a tall weight (right vectors, R = G Q^T)
and a wide one (left vectors, R = P^T G); the weight after every step agrees within 1e-4 relative.
Singular vectors are signed as linalg.h says (largest-magnitude entry positive)."""
import os
import subprocess
import sys
import tempfile

import numpy as np

STEPS, GAP = 30, 10
HP = dict(lr=1e-2, scale=0.5, beta1=0.9, beta2=0.999, eps=1e-8)


def signed(vectors, axis):
    """Flips each vector (rows for axis=1, columns for axis=0) so its largest |entry| is > 0."""
    v = vectors.copy()
    if axis == 1:
        for i in range(v.shape[0]):
            j = np.argmax(np.abs(v[i]))
            v[i] *= np.sign(v[i, j])
    else:
        for i in range(v.shape[1]):
            j = np.argmax(np.abs(v[:, i]))
            v[:, i] *= np.sign(v[j, i])
    return v


def reference(W0, grads, k, right):
    W = W0.astype(np.float64).copy()
    m_, v_ = None, None
    out = []
    for t, G in enumerate(grads, start=1):
        G = G.astype(np.float64)
        if (t - 1) % GAP == 0:
            U, s, Vt = np.linalg.svd(G, full_matrices=False)
            proj = signed(Vt[:k], 1) if right else signed(U[:, :k], 0)
        R = G @ proj.T if right else proj.T @ G
        if m_ is None:
            m_, v_ = np.zeros_like(R), np.zeros_like(R)
        m_ = HP["beta1"] * m_ + (1 - HP["beta1"]) * R
        v_ = HP["beta2"] * v_ + (1 - HP["beta2"]) * R * R
        N = (m_ / (1 - HP["beta1"] ** t)) / (np.sqrt(v_) / np.sqrt(1 - HP["beta2"] ** t) + HP["eps"])
        W -= HP["lr"] * HP["scale"] * (N @ proj if right else proj @ N)
        out.append(W.copy())
    return out


def gradients(m, n, seed):
    """Gradients with a well-separated spectrum that drifts over time (so refreshes matter)."""
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((m, min(m, n))))
    V, _ = np.linalg.qr(rng.standard_normal((n, min(m, n))))
    s = 2.0 ** -np.arange(min(m, n))
    out = []
    for t in range(STEPS):
        rot = rng.standard_normal((m, n)) * 0.02 * (1 + t // GAP)
        out.append(((U * s) @ V.T + rot).astype(np.float32))
    return out


def run_case(binary, m, n, k, right, seed):
    rng = np.random.default_rng(seed + 1)
    W0 = rng.standard_normal((m, n)).astype(np.float32)
    grads = gradients(m, n, seed)
    with tempfile.TemporaryDirectory() as work:
        inp, outp = os.path.join(work, "in.bin"), os.path.join(work, "out.bin")
        with open(inp, "wb") as f:
            np.array([m, n, k, right, GAP, STEPS], dtype=np.int32).tofile(f)
            np.array([HP[x] for x in ("lr", "scale", "beta1", "beta2", "eps")],
                     dtype=np.float32).tofile(f)
            W0.tofile(f)
            for G in grads:
                G.tofile(f)
        env = dict(os.environ, GORP_LOWRANK_IN=inp, GORP_LOWRANK_OUT=outp)
        subprocess.run([binary], env=env, check=True)
        ours = np.fromfile(outp, dtype=np.float32).reshape(STEPS, m, n)
    ref = reference(W0, grads, k, right)
    worst = max(np.abs(ours[t] - ref[t]).max() / np.abs(ref[t] - W0).max()
                for t in range(STEPS))
    return worst


def main():
    binary = os.environ.get("GORP_TEST_BIN_DIR")
    binary = os.path.join(binary, "test_lowrank") if binary else os.path.join(
        os.path.dirname(os.environ["GORP"]), "tests", "test_lowrank")
    fails = 0
    for name, m, n, k, right in (("tall 48 x 20, right vectors", 48, 20, 4, 1),
                                 ("wide 16 x 40, left vectors", 16, 40, 4, 0)):
        worst = run_case(binary, m, n, k, right, seed=m + n)
        ok = worst <= 1e-4
        fails += not ok
        print(f"{'PASS' if ok else 'FAIL'} {name}: worst |W - W_ref| / |W_ref - W0| over "
              f"{STEPS} steps {worst:.1e} (<= 1e-4)")
    print(f"{2 - fails} passed, {fails} failed")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
