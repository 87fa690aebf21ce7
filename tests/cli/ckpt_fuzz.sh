#!/usr/bin/env bash
# One flipped byte in the HDF5 metadata (superblock, object headers, link and attribute messages,
# not only dataset bytes) of a checkpoint or a model file is damage that gorp names, never a crash
# inside HDF5, a hang, an absurd allocation or a silently different state: gorp writes its files
# in a format where every piece of metadata carries a checksum, with fixed-length strings and
# compact groups (docs/CHECKPOINT.md, "Damaged files"). For a deterministic sample of metadata
# bytes (all of the superblock, then every k-th byte), `gorp inspect --verify` (the code a resume
# runs) must exit 2 naming the file, or exit 0 on a file whose every attribute and dataset is
# unchanged (a flip in unused bytes). A few flips of the newest checkpoint are then resumed for
# real: named, fallen back to the previous checkpoint, ending bit-identical to the uninterrupted
# run. A lean checkpoint (with its /base reference) is fuzzed the same way.
. "$(dirname "$0")/lib.bash"

small_run_config "$work/c.ini"
ck="$work/run/checkpoints"
reference="$work/ref"
"$GORP" run "$work/c.ini" --set run.out_dir="$reference" >"$work/ref.log" 2>&1 \
  || { fail "reference run"; cat "$work/ref.log"; }
# a run crashed inside its 4th save: checkpoints 1-3, LATEST names 3 (mid-task 1: optimizer
# moments, losses, LoRA pair and bases all in the file)
(GORP_FAULT_SAVE_ABORT=4 "$GORP" run "$work/c.ini" >"$work/crash.log" 2>&1) 2>/dev/null
cp -r "$ck" "$work/pristine"
latest=$(cat "$ck/LATEST")

# fuzz FILE STEP: flips every metadata byte of the superblock (the first 48), then every STEP-th
# metadata byte; prints one line per check and, last, the offsets kept for resuming
fuzz() {
  "$GORP_PYTHON" - "$GORP" "$1" "$2" "$work/flip.h5" <<'PY'
import hashlib, os, subprocess, sys
import h5py, numpy as np
gorp, src, step, flipped = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

def digest(path):  # of every attribute and dataset, for "accepted means unchanged"
    h = hashlib.sha256()
    with h5py.File(path, "r") as f:
        def take(name, o):
            for k in sorted(o.attrs):
                v = np.asarray(o.attrs[k])
                h.update(f"{name}@{k}{v.dtype}{v.shape}".encode() + v.tobytes())
            if isinstance(o, h5py.Dataset):
                v = o[...]
                h.update(f"{name}{v.dtype}{v.shape}".encode() + v.tobytes())
        take("/", f)
        f.visititems(take)
    return h.hexdigest()

def digest_apart(path):  # in a child: h5py may crash on a damaged file gorp wrongly accepted
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.write(w, digest(path).encode())
        finally:
            os._exit(0)
    os.close(w)
    got = os.read(r, 100).decode()
    os.close(r)
    os.waitpid(pid, 0)
    return got

raw = []
with h5py.File(src, "r") as f:
    f.visititems(lambda n, o: raw.append((o.id.get_offset(), o.id.get_storage_size()))
                 if isinstance(o, h5py.Dataset) else None)
data = open(src, "rb").read()
is_raw = np.zeros(len(data), bool)
for off, size in raw:
    is_raw[off:off + size] = True
meta = np.flatnonzero(~is_raw)
sample = sorted(set(meta[meta < 48].tolist()) | set(meta[48::step].tolist()))
base = digest(src)
rejected, accepted, bad = [], [], []
for i in sample:
    b = bytearray(data)
    b[i] ^= 0xFF
    open(flipped, "wb").write(b)
    r = subprocess.run(["timeout", "-k", "5", "30", gorp, "inspect", flipped, "--verify"],
                       capture_output=True)
    err = r.stderr.decode(errors="replace")
    if r.returncode == 2 and flipped in err:
        rejected.append(i)
    elif r.returncode == 0:
        (accepted if digest_apart(flipped) == base else bad).append((i, "accepted a changed file"))
    else:
        why = {124: "hang"}.get(r.returncode, f"signal {r.returncode - 128}"
                                if r.returncode > 128 else f"exit {r.returncode}")
        bad.append((i, f"{why} {err.strip().splitlines()[0][:160]}" if err.strip() else why))
print(f"{len(meta)} metadata bytes of {len(data)}; {len(sample)} flipped: "
      f"{len(rejected)} named and refused, {len(accepted)} in unused bytes accepted unchanged, "
      f"{len(bad)} bad")
for i, why in bad[:10]:
    print(f"BAD byte {i}: {why}")
# for resuming: refused flips spread over the file (superblock, object headers), and one accepted
keep = rejected[::max(1, len(rejected) // 4)][:4] + [i for i, _ in accepted[:1]]
print("KEEP", *keep)
sys.exit(1 if bad or not rejected else 0)
PY
}

fuzz "$ck/$latest" 10 >"$work/fuzz_ckpt.txt" 2>&1 \
  && pass "checkpoint: $(head -1 "$work/fuzz_ckpt.txt")" \
  || { fail "checkpoint metadata flips:"; grep -v KEEP "$work/fuzz_ckpt.txt" | sed 's/^/    /'; }
fuzz "$reference/model.h5" 8 >"$work/fuzz_model.txt" 2>&1 \
  && pass "model file: $(head -1 "$work/fuzz_model.txt")" \
  || { fail "model file metadata flips:"; grep -v KEEP "$work/fuzz_model.txt" | sed 's/^/    /'; }

# a lean checkpoint (docs/CHECKPOINT.md): its /base reference is metadata like the rest; every
# 40th byte (its --verify also reads the base, so each flip costs more)
"$GORP" run "$work/c.ini" --set model.init=random --set run.method=seqft --set data.tasks=SST-2 \
  --set run.out_dir="$work/base" >"$work/base.log" 2>&1 || fail "lean: the base run"
(GORP_FAULT_SAVE_ABORT=4 "$GORP" run "$work/c.ini" --set model.init="$work/base/model.h5" \
  --set run.out_dir="$work/lean" >/dev/null 2>&1) 2>/dev/null
lean="$work/lean/checkpoints/$(cat "$work/lean/checkpoints/LATEST")"
"$GORP_PYTHON" -c "import sys, h5py; sys.exit('base' not in h5py.File(sys.argv[1], 'r'))" "$lean" \
  || fail "lean: $lean has no /base"
fuzz "$lean" 40 >"$work/fuzz_lean.txt" 2>&1 \
  && pass "lean checkpoint: $(head -1 "$work/fuzz_lean.txt")" \
  || { fail "lean checkpoint metadata flips:"; grep -v KEEP "$work/fuzz_lean.txt" | sed 's/^/    /'; }

# resume for real after some of those flips of LATEST's checkpoint
for i in $(grep '^KEEP' "$work/fuzz_ckpt.txt" | cut -d' ' -f2-); do
  rm -rf "$ck" && cp -r "$work/pristine" "$ck"
  "$GORP_PYTHON" -c "import sys; f = open(sys.argv[1], 'r+b'); f.seek(int(sys.argv[2])); \
b = f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0xFF]))" "$ck/$latest" "$i"
  timeout -k 5 300 "$GORP" run "$work/c.ini" >"$work/resume.log" 2>&1
  rc=$?
  if [ "$rc" -eq 0 ] && same_run "$work/run" "$reference" \
    && { grep -q "resuming from $ck/$latest\$" "$work/resume.log" \
      || { grep -q "$ck/$latest" "$work/resume.log" && grep -q "falling back to" "$work/resume.log"; }; }; then
    pass "byte $i of $latest flipped: $(grep -m1 -o 'falling back to.*\|resuming from.*' "$work/resume.log"), same final result"
  else
    fail "byte $i of $latest flipped: exit $rc"; tail -6 "$work/resume.log" | sed 's/^/    /'
  fi
done
finish
