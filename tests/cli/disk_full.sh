#!/usr/bin/env bash
# A full disk at any point of a run ends with exit 3 and a message naming the file, never a crash
# (HDF5 1.10 used to segfault in MPI_Finalize after a failed close, rc 139), never a half-written
# checkpoint under a final name; after space is freed the run resumes and ends bit-identical to an
# uninterrupted run. The run directory lives on a small tmpfs (mounted here: needs root, else the
# test says SKIP); the sizes put the fill point in the data of every part of a checkpoint, in its
# closing (the space HDF5 needs for its metadata) and in LATEST.
. "$(dirname "$0")/lib.bash"

mnt="$work/mnt"
mkdir -p "$mnt"
if ! mount -t tmpfs -o size=64k tmpfs "$mnt" 2>"$work/mount.err"; then
  echo "SKIP: cannot mount a tmpfs ($(cat "$work/mount.err")): the disk-full test needs root"
  finish
  exit
fi
umount "$mnt"
trap 'umount "$mnt" 2>/dev/null; rm -rf "$work"' EXIT

small_run_config "$work/base.ini"
printf 'include = base.ini\n[run]\nout_dir = %s/run\n' "$mnt" >"$work/c.ini"
"$GORP" run "$work/c.ini" --set run.out_dir="$work/ref" >"$work/ref.log" 2>&1 \
  || { fail "reference run"; cat "$work/ref.log"; }

full=0
for kb in 64 96 128 160 192 224 256 288 304 308 312 320 352 384 416 424 432 436 440 480; do
  mount -t tmpfs -o size=${kb}k tmpfs "$mnt"
  timeout -k 10 300 "$GORP" run "$work/c.ini" >"$work/full.log" 2>&1
  rc=$?
  ck="$mnt/run/checkpoints"
  bad=""
  for f in "$ck"/ckpt_*.h5; do # every published checkpoint is whole
    [ -e "$f" ] && ! "$GORP" inspect "$f" --verify >/dev/null 2>&1 && bad="$bad $(basename "$f")"
  done
  if [ "$rc" -eq 3 ] && grep -q "No space left on device\|cannot write\|cannot create" "$work/full.log" \
    && [ -z "$bad" ] && ! ls "$ck"/*.tmp >/dev/null 2>&1; then
    full=$((full + 1))
    mount -o remount,size=8m "$mnt" # space freed: the run resumes
    if "$GORP" run "$work/c.ini" >"$work/resume.log" 2>&1 && same_run "$mnt/run" "$work/ref"; then
      pass "${kb} KiB: exit 3, '$(grep -m1 -o 'error: .*' "$work/full.log" | cut -c8- | sed "s|$mnt/run/||g")'; resumed, same final result"
    else
      fail "${kb} KiB: the resume after freeing space:"; tail -4 "$work/resume.log" | sed 's/^/    /'
    fi
  elif [ "$rc" -eq 0 ] && same_run "$mnt/run" "$work/ref"; then
    pass "${kb} KiB: enough space, same result"
  else
    fail "${kb} KiB: exit $rc${bad:+, damaged checkpoints:$bad}"; grep error "$work/full.log" | head -3 | sed 's/^/    /'
  fi
  umount "$mnt"
done
[ "$full" -ge 5 ] && pass "$full fill points ended in a full disk" \
  || fail "only $full sizes filled the disk (the files grew? adjust the sizes)"

# two ranks sharing each file through MPI-IO (the collective close used to deadlock when a rank's
# metadata write failed)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for kb in 96 144 200 312 400; do
  mount -t tmpfs -o size=${kb}k tmpfs "$mnt"
  timeout -k 10 120 mpirun --allow-run-as-root --oversubscribe -np 2 "$GORP" run "$work/c.ini" \
    --set parallel.tp=2 >"$work/full.log" 2>&1
  rc=$?
  if [ "$rc" -eq 3 ] && grep -q "No space left on device\|cannot write" "$work/full.log"; then
    pass "tp = 2, ${kb} KiB: exit 3, no hang"
  else
    fail "tp = 2, ${kb} KiB: exit $rc"; grep -m3 "error" "$work/full.log" | sed 's/^/    /'
  fi
  umount "$mnt"
done
finish
