#!/usr/bin/env python3
"""Training-step speed of gorp against PyTorch and against this machine's SGEMM ceiling (issue 8).

For each LLaMA size it builds one random model with tests/ref/llama_ref.py, saves it as a Hugging
Face directory, imports it with `gorp import-hf`, and times on the same model, the same batch
(next-token targets on random ids), fp32, the same thread count and the same optimizer settings:
  - gorp: `gorp fit --time --warmup W --steps W+N` (OPENBLAS_NUM_THREADS = OMP_NUM_THREADS =
    threads); the harness
    reads its step_s and fit-time output (a step: zero grads + forward + backward + global-norm
    clip + AdamW);
  - PyTorch: the reference model, torch.optim.AdamW + clip_grad_norm_, torch.set_num_threads,
    in a child process so that its peak RSS is its own.
The ceiling is bench/bench_sgemm.c (OpenBLAS SGEMM 2048^3), built by CMake beside gorp: the same
OpenBLAS and the same kernels that gorp runs. Prints one Markdown table and appends it, with the
command, date and machine, to BENCHMARKS.md.

FLOPs per step = 6 * P_gemm * B * T + 6 * L * B * T^2 * H, where P_gemm counts the weights that take
part in a matrix product (the seven projections of every layer and the LM head; not the embedding
table nor the norm vectors), B = batch, T = sequence length, L = layers, H = hidden size. The first
term is forward (2) + backward (4) per weight and token; the second is QK^T and PV, forward and
backward, with the causal half counted.

The GEMM floor is bench/bench_gemm_floor.c: the step's matrix products (and attention ops) alone,
through gorp's own backend, built by CMake beside the timed gorp: the fastest a
step of gorp's code could be with this BLAS if everything else were free, and so the largest ratio
to PyTorch that it could show.

Not for: tests (no timing belongs in tests/), nor decoding (bench_decode.py) or GORP-vs-inclora
timing (bench_methods.py).

  build/venv/bin/python bench/bench_train.py [--sizes tiny,small,medium] [--threads 2] [--rounds 1]
"""
import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "ref"))

# hidden, layers, heads, intermediate, vocabulary (issue 8), and the untimed + timed steps per size:
# few on medium so that the whole run stays within minutes on 2 cores.
SIZES = {
    "tiny": dict(hidden=128, layers=4, heads=4, inter=344, vocab=512, warmup=2, steps=10),
    "small": dict(hidden=512, layers=6, heads=8, inter=1376, vocab=4096, warmup=2, steps=5),
    "medium": dict(hidden=768, layers=12, heads=12, inter=2048, vocab=8192, warmup=2, steps=3),
}
# The same AdamW settings for both engines.
OPT = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1, grad_clip=1.0)
SEED_MODEL, SEED_IDS = 1, 2
SGEMM_N, SGEMM_REPS = 2048, 10
NICE = 0  # --nice: scheduling priority of every timed child (SGEMM, gorp, PyTorch)


def make_config(size, seq):
    import llama_ref as ref
    s = SIZES[size]
    return ref.Config(s["vocab"], s["hidden"], s["inter"], s["layers"], s["heads"], s["heads"],
                      max_position_embeddings=seq)


def gemm_params(cfg):
    """Weights that take part in a matrix product: per layer q, k, v, o, gate, up, down; LM head."""
    H, I, D = cfg.hidden_size, cfg.intermediate_size, cfg.head_dim
    q = H * cfg.num_attention_heads * D
    kv = 2 * H * cfg.num_key_value_heads * D
    per_layer = q + kv + cfg.num_attention_heads * D * H + 3 * H * I
    return cfg.num_hidden_layers * per_layer + H * cfg.vocab_size


def step_flops(cfg, batch, seq):
    tokens = batch * seq
    attn = 6 * cfg.num_hidden_layers * batch * seq * seq * cfg.hidden_size
    return 6 * gemm_params(cfg) * tokens + attn


def make_ids(cfg, batch, seq):
    import torch
    gen = torch.Generator().manual_seed(SEED_IDS)
    return torch.randint(0, cfg.vocab_size, (batch, seq), generator=gen)


def thread_env(threads, omp_passive=False):
    env = dict(os.environ)
    for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = str(threads)
    env.pop("OMP_WAIT_POLICY", None)
    if omp_passive:
        # Debian's torch runs its own ops on OpenMP threads and its matmuls on OpenBLAS's pthreads:
        # with OpenMP's default spin-wait both pools compete for the same cores (measured here:
        # 3x slower steps at tiny). PASSIVE lets idle OpenMP threads sleep.
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    # OpenBLAS kernel/cache overrides from the caller's environment would not measure this
    # machine's own choice (TOOLCHAIN.md has numpy users unset them).
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    return env


def vm_hwm_mb():
    """This process's peak RSS (VmHWM): unlike ru_maxrss it does not carry the spawning harness's
    high-water mark across exec (Linux does that for ru_maxrss), as gorp's fit-time line."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return -1.0


def run(cmd, env=None):
    nice = (lambda: os.nice(NICE)) if NICE else None
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, preexec_fn=nice)
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}")
    return r.stdout


# ---------------------------------------------------------------------------------------------
# The PyTorch side, run in a child process (--torch-child).

def torch_child(spec):
    import torch
    import llama_ref as ref
    torch.set_num_threads(spec["threads"])
    cfg = make_config(spec["size"], spec["seq"])
    model = ref.make_model(cfg, seed=SEED_MODEL)
    ids = make_ids(cfg, spec["batch"], spec["seq"])
    targets = ref.next_token_targets(ids)
    opt = torch.optim.AdamW(model.parameters(), lr=OPT["lr"], betas=(OPT["beta1"], OPT["beta2"]),
                            eps=OPT["eps"], weight_decay=OPT["weight_decay"])
    times, first_loss = [], None
    for s in range(spec["warmup"] + spec["steps"]):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = ref.masked_loss(model(ids), targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), OPT["grad_clip"])
        opt.step()
        dt = time.perf_counter() - t0
        if s == 0:
            first_loss = loss.item()
        if s >= spec["warmup"]:
            times.append(dt)
    peak_mb = vm_hwm_mb()
    print(json.dumps(dict(mean_step_s=sum(times) / len(times), min_step_s=min(times), times=times,
                          first_loss=first_loss, peak_rss_mb=peak_mb,
                          torch=torch.__version__, threads=torch.get_num_threads())))


# ---------------------------------------------------------------------------------------------
# The harness.

def tool_copy(work, gorp, name):
    """A private copy of a bench tool (bench_gemm_floor, bench_sgemm) that the build of `gorp`
    made (same flags, same BLAS kernels)."""
    exe = os.path.join(os.path.dirname(os.path.abspath(gorp)), name)
    if not os.path.exists(exe):
        raise RuntimeError(f"{exe} not found: build it beside gorp (cmake --build build --target "
                           f"{name})")
    shutil.copy2(exe, os.path.join(work, name))
    return os.path.join(work, name)


def floor_measure(exe, cfg, args, reps):
    """Best seconds of one step's products alone (bench_gemm_floor)."""
    line = run([exe, *map(str, (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads,
                                cfg.num_key_value_heads, cfg.intermediate_size, cfg.vocab_size,
                                args.batch, args.seq, reps))], env=thread_env(args.threads))
    print(f"  {line.strip()}", file=sys.stderr)
    return float(re.search(r"best_s=([0-9.]+)", line).group(1))


def sgemm_measure(exe, threads_list, best):
    """Best SGEMM GFLOP/s per thread count, folded into best (dict threads -> GFLOP/s)."""
    for t in threads_list:
        line = run([exe, str(SGEMM_N), str(t), str(SGEMM_REPS)], env=thread_env(t))
        g = float(re.search(r"best_gflops=([0-9.]+)", line).group(1))
        best[t] = max(g, best.get(t, 0.0))
        print(f"  {line.strip()}", file=sys.stderr)


def bench_size(size, args, work):
    import torch
    import llama_ref as ref
    s = SIZES[size]
    warmup = s["warmup"] if args.warmup is None else args.warmup
    steps = s["steps"] if args.steps is None else args.steps
    cfg = make_config(size, args.seq)
    d = os.path.join(work, size)
    os.makedirs(d, exist_ok=True)
    model = ref.make_model(cfg, seed=SEED_MODEL)
    ref.save_hf(model, os.path.join(d, "hf"))
    params = sum(p.numel() for p in model.parameters())
    del model
    h5 = os.path.join(d, "model.h5")
    run([args.gorp, "import-hf", os.path.join(d, "hf"), h5])
    ids = make_ids(cfg, args.batch, args.seq)
    ref.write_ids(os.path.join(d, "ids.txt"), ids)
    del ids
    torch.set_num_threads(1)

    fit_cmd = [args.gorp, "fit", "--model", h5, "--tokens", os.path.join(d, "ids.txt"),
               "--steps", str(warmup + steps), "--warmup", str(warmup), "--time",
               "--lr", str(OPT["lr"]), "--beta1", str(OPT["beta1"]), "--beta2", str(OPT["beta2"]),
               "--eps", str(OPT["eps"]), "--weight-decay", str(OPT["weight_decay"]),
               "--grad-clip", str(OPT["grad_clip"])]
    spec = dict(size=size, seq=args.seq, batch=args.batch, threads=args.threads, warmup=warmup,
                steps=steps)
    torch_cmd = [args.python, os.path.abspath(__file__), "--torch-child", json.dumps(spec)]
    runs = {"gorp": [], "torch": []}
    for r in range(args.rounds):  # alternate the engines so that both meet the same load
        print(f"[{size}] round {r + 1}/{args.rounds} gorp: {warmup} untimed + {steps} timed steps",
              file=sys.stderr)
        out = run(fit_cmd, env=thread_env(args.threads))
        line = next(ln for ln in out.splitlines() if ln.startswith("fit-time "))
        g = {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.eE+-]+)", line)}
        g["first_loss"] = float(re.search(r"step\s+1 loss ([0-9.eE+-]+)", out).group(1))
        g["times"] = [float(x) for x in re.findall(r"step_s ([0-9.]+)", out)][warmup:]
        print(f"  {line}", file=sys.stderr)
        runs["gorp"].append(g)

        print(f"[{size}] round {r + 1}/{args.rounds} torch: {warmup} untimed + {steps} timed steps",
              file=sys.stderr)
        t = json.loads(run(torch_cmd, env=thread_env(args.threads, args.torch_env == "passive"))
                       .strip().splitlines()[-1])
        print(f"  {json.dumps(t)}", file=sys.stderr)
        runs["torch"].append(t)
        if abs(g["first_loss"] - t["first_loss"]) > 1e-3 * abs(t["first_loss"]):
            raise RuntimeError(f"{size}: step-1 loss differs (gorp {g['first_loss']}, PyTorch "
                               f"{t['first_loss']}): not the same model or batch")
    g, t = (pool(runs["gorp"]), pool(runs["torch"]))
    print(f"[{size}] GEMM floor: the step's products alone, best of {steps + warmup}",
          file=sys.stderr)
    floor_s = floor_measure(args.floor_exe, cfg, args, steps + warmup)

    tokens = args.batch * args.seq
    return dict(size=size, cfg=cfg, warmup=warmup, steps=steps, rounds=args.rounds, tokens=tokens,
                params=params, flops=step_flops(cfg, args.batch, args.seq), gorp=g,
                torch=t, floor_s=floor_s)


def pool(rs):
    """One engine's rounds as one: every timed step counts; the largest peak RSS."""
    times = [x for r in rs for x in r["times"]]
    return dict(times=times, mean_step_s=sum(times) / len(times), min_step_s=min(times),
                peak_rss_mb=max(r["peak_rss_mb"] for r in rs), first_loss=rs[0]["first_loss"],
                torch=rs[0].get("torch"))


def set_autogroup_nice(nice):
    """With the kernel's autogroup scheduling (Linux default), CPU time is shared fairly between
    sessions first, so a process's nice value only counts inside its own session: the session's
    autogroup gets the same nice (this harness's session only)."""
    try:
        with open("/proc/sys/kernel/sched_autogroup_enabled") as f:
            if f.read().strip() != "1":
                return
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(nice))
    except OSError as e:
        print(f"warning: cannot set the autogroup's nice to {nice}: {e}", file=sys.stderr)


def cpu_busy():
    """(wall s, CPU s of the whole machine from /proc/stat, CPU s of this process and its
    children)."""
    try:
        with open("/proc/stat") as f:
            f_ = [int(x) for x in f.readline().split()[1:]]
        busy = (sum(f_) - f_[3] - f_[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
    except OSError:
        busy = float("nan")
    t = os.times()
    return time.monotonic(), busy, t.user + t.system + t.children_user + t.children_system


def other_cores_busy(a, b):
    """Cores kept busy on average by processes other than the harness and its children."""
    return max(0.0, ((b[1] - a[1]) - (b[2] - a[2])) / (b[0] - a[0]))


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return platform.processor() or "unknown"
    m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
    simd = ""
    if flags:
        fl = flags.group(1).split()
        simd = " (AVX-512)" if "avx512f" in fl else " (AVX2)" if "avx2" in fl else ""
    return (m.group(1).strip() if m else "unknown") + simd


def gorp_revision():
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
        # BENCHMARKS.md itself does not count: an earlier entry is no change to the code
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no",
                                "--", ".", ":!BENCHMARKS.md"], capture_output=True,
                               text=True).stdout.strip()
        return head + (" + uncommitted changes" if dirty else "") if head else "unknown"
    except OSError:
        return "unknown"


def append_entry(script, title, threads, load_start, notes, lines, python="build/venv/bin/python"):
    """Appends one entry of another bench script to BENCHMARKS.md: heading, command (run by
    python), machine, gorp's revision, the load average taken before the run, the script's notes,
    its table."""
    command = f"{python} bench/{script} " + " ".join(map(shlex.quote, sys.argv[1:]))
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    entry = [f"\n## {now}: {title}, {threads} thread{'s' if threads > 1 else ''}\n",
             f"- Command: `{command.strip()}`",
             f"- Machine: {cpu_model()}, nproc {os.cpu_count()}; load average before the run: "
             f"{load_start:.2f}",
             f"- gorp: {gorp_revision()}"] + [f"- {n}" for n in notes] + [""] + lines
    with open(os.path.join(ROOT, "BENCHMARKS.md"), "a") as f:
        f.write("\n".join(entry) + "\n")


def table(rows, ceiling):
    hdr = ["size", "params (M)", "GFLOP/step", "timed steps", "gorp tok/s", "PyTorch tok/s",
           "gorp / PyTorch (best steps)", "gorp GFLOP/s (% ceiling)", "PyTorch GFLOP/s (% ceiling)",
           "GEMM floor tok/s (/ PyTorch)", "gorp step / floor", "gorp peak RSS MB",
           "PyTorch peak RSS MB", "W+G+Adam MB", "step-1 loss gorp / PyTorch"]
    lines = ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    for r in rows:
        g, t = r["gorp"], r["torch"]
        g_tps = r["tokens"] / g["mean_step_s"]
        t_tps = r["tokens"] / t["mean_step_s"]
        g_gf = r["flops"] / g["mean_step_s"] / 1e9
        t_gf = r["flops"] / t["mean_step_s"] / 1e9
        lines.append("| " + " | ".join([
            r["size"], f"{r['params'] / 1e6:.2f}", f"{r['flops'] / 1e9:.1f}",
            f"{r['rounds']} x {r['steps']} (+{r['warmup']} warmup)", f"{g_tps:,.0f}",
            f"{t_tps:,.0f}",
            f"{g_tps / t_tps:.2f}x ({t['min_step_s'] / g['min_step_s']:.2f}x)",
            f"{g_gf:.1f} ({100 * g_gf / ceiling:.0f}%)",
            f"{t_gf:.1f} ({100 * t_gf / ceiling:.0f}%)",
            f"{r['tokens'] / r['floor_s']:,.0f} ({r['tokens'] / r['floor_s'] / t_tps:.2f}x)",
            f"{g['mean_step_s'] / r['floor_s']:.2f}", f"{g['peak_rss_mb']:,.0f}",
            f"{t['peak_rss_mb']:,.0f}", f"{16 * r['params'] / 2**20:,.0f}",
            f"{g['first_loss']:.5f} / {t['first_loss']:.5f}"]) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="tiny,small,medium")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--warmup", type=int, help="untimed steps for every size (default per size)")
    ap.add_argument("--steps", type=int, help="timed steps for every size (default per size)")
    ap.add_argument("--gorp", default=os.environ.get("GORP", os.path.join(ROOT, "build", "gorp")))
    ap.add_argument("--python", default=sys.executable, help="Python with torch for the child")
    ap.add_argument("--rounds", type=int, default=1,
                    help="runs of each engine per size, alternating; their timed steps are pooled")
    ap.add_argument("--nice", type=int, default=0,
                    help="nice increment of the timed processes (negative needs root: on a shared "
                         "machine it takes the cores from other work while it runs)")
    ap.add_argument("--torch-env", choices=("passive", "default"), default="passive",
                    help="PyTorch's OpenMP wait policy: OMP_WAIT_POLICY=PASSIVE (default) or unset")
    ap.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    ap.add_argument("--no-append", action="store_true", help="print the table only")
    ap.add_argument("--torch-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_child:
        torch_child(json.loads(args.torch_child))
        return 0
    global NICE
    NICE = args.nice
    if NICE:
        set_autogroup_nice(NICE)
    sizes = [s for s in args.sizes.split(",") if s]
    for s in sizes:
        if s not in SIZES:
            ap.error(f"unknown size {s!r} (known: {', '.join(SIZES)})")
    os.environ["GORP"] = args.gorp
    command = "build/venv/bin/python bench/bench_train.py " + " ".join(
        shlex.quote(a) for a in sys.argv[1:])

    load_start = os.getloadavg()[0]
    cpu0 = cpu_busy()
    with tempfile.TemporaryDirectory(prefix="gorp-bench-") as work:
        # a private copy: a rebuild of build/ during the run must not change the binary timed
        gorp_built = args.gorp
        shutil.copy2(args.gorp, os.path.join(work, "gorp"))
        args.gorp = os.path.join(work, "gorp")
        os.environ["GORP"] = args.gorp
        # The ceiling is measured before every size and at the end, and the best kept: a busy
        # machine lowers it, which would flatter the engines' shares.
        args.floor_exe = tool_copy(work, gorp_built, "bench_gemm_floor")
        exe, sg, rows = tool_copy(work, gorp_built, "bench_sgemm"), {}, []
        for s in sizes:
            print("SGEMM ceiling:", file=sys.stderr)
            sgemm_measure(exe, sorted({1, args.threads}), sg)
            rows.append(bench_size(s, args, work))
        print("SGEMM ceiling:", file=sys.stderr)
        sgemm_measure(exe, sorted({1, args.threads}), sg)
        ceiling = sg[args.threads]
    other = other_cores_busy(cpu0, cpu_busy())

    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    sgemm_txt = ", ".join(f"{sg[t]:.1f} GFLOP/s on {t} thread{'s' if t > 1 else ''}"
                          for t in sorted(sg))
    tver = rows[0]["torch"]["torch"] if rows else "?"
    md = "\n".join([
        f"## {now}: training step, {args.threads} thread{'s' if args.threads > 1 else ''}",
        "",
        f"- Command: `{command}`",
        f"- Machine: {cpu_model()}, nproc {os.cpu_count()}; threads: {args.threads} for gorp "
        f"(OPENBLAS_NUM_THREADS and OMP_NUM_THREADS) and PyTorch {tver} "
        f"(torch.set_num_threads, OPENBLAS_NUM_THREADS, "
        + ("OMP_WAIT_POLICY=PASSIVE)" if args.torch_env == "passive" else "OMP_WAIT_POLICY unset)"),
        f"- gorp: {gorp_revision()}; peak RSS = each process's own VmHWM (a CPU gorp process "
        "starts at about 26 MB)",
        f"- Other load: other processes took {other:.2f} of {os.cpu_count()} cores on average "
        f"during the run (load average {load_start:.2f} before it)"
        + (f"; the timed processes ran at nice {NICE}" if NICE else "")
        + ("" if other < 0.2 else ". **The machine was busy: these numbers are not for keeping** "
           "(busy cores slow both engines and the ceiling, gorp's small threaded GEMMs most; "
           "the fastest steps suffer less: ratio in parentheses)"),
        f"- SGEMM ceiling (OpenBLAS, {SGEMM_N}^3, best of {SGEMM_REPS} calls before each size and "
        f"at the end): {sgemm_txt}; the '% ceiling' columns use the {args.threads}-thread figure",
        f"- Batch {args.batch} x seq {args.seq} = {args.batch * args.seq} tokens/step, fp32, AdamW "
        f"(lr {OPT['lr']}, betas {OPT['beta1']}/{OPT['beta2']}, weight decay "
        f"{OPT['weight_decay']}, clip {OPT['grad_clip']}), next-token loss on random ids; "
        "tokens/s from the mean of the timed steps",
        "- FLOPs/step = 6 * P_gemm * B * T + 6 * L * B * T^2 * H (P_gemm: layer projections + "
        "LM head, no embedding table or norms); W+G+Adam = 16 bytes x all parameters",
        "",
        table(rows, ceiling),
        "",
    ])
    print(md)
    if not args.no_append:
        new = not os.path.exists(args.out)
        with open(args.out, "a") as f:
            if new:
                f.write("# Benchmarks\n\nAppended by `bench/bench_train.py` (see bench/README.md "
                        "for the columns); newest last. Timings are never part of the tests.\n\n")
            f.write(md + "\n")
        print(f"appended to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
