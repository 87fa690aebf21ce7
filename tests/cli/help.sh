#!/usr/bin/env bash
# The command line of every subcommand (src/cmd/cmd_args.c): `gorp COMMAND --help` prints a line
# starting "usage: gorp COMMAND" on stdout and exits 0, for every command `gorp --help` lists; an
# unknown option, an abbreviated one, a missing value and a surplus argument exit 64 naming the
# argument; `gorp --version` prints the version of CMakeLists.txt's project(). Starts nothing but
# the argument parsing (no file is read).
. "$(dirname "$0")/lib.bash"
src=${GORP_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}

# run_gorp ARGS...: exit status in $rc, stdout in $work/out, stderr in $work/err
run_gorp() {
  rc=0
  "$GORP" "$@" >"$work/out" 2>"$work/err" || rc=$?
}

# expect_usage NAME PATTERN ARGS...: exit 64 and PATTERN (grep -F) on stderr
expect_usage() {
  local name=$1 pattern=$2
  shift 2
  run_gorp "$@"
  if [ "$rc" = 64 ] && grep -qF -- "$pattern" "$work/err"; then
    pass "$name"
  else
    fail "$name: exit $rc, stderr:"
    sed 's/^/    /' "$work/err"
  fi
}

run_gorp --help
commands=$(awk '$1 == "gorp" && $2 != "COMMAND" && $2 != "--help" { print $2 }' "$work/out")
[ "$rc" = 0 ] && grep -q "^usage: gorp COMMAND" "$work/out" && [ "$(echo "$commands" | wc -w)" -ge 10 ] \
  && pass "gorp --help lists $(echo "$commands" | wc -w) commands, exit 0" \
  || fail "gorp --help: exit $rc, commands: $commands"

for c in $commands; do
  run_gorp "$c" --help
  if [ "$rc" = 0 ] && head -1 "$work/out" | grep -q "^usage: gorp $c" && grep -q -- "--help" "$work/out" \
    && [ ! -s "$work/err" ]; then
    pass "gorp $c --help: usage on stdout, exit 0"
  else
    fail "gorp $c --help: exit $rc, first line '$(head -1 "$work/out")', stderr $(head -1 "$work/err")"
  fi
  expect_usage "gorp $c: unknown option named" "unexpected argument '--no-such-option'" \
    "$c" --no-such-option
done

run_gorp import-hf -h
[ "$rc" = 0 ] && grep -q "^usage: gorp import-hf DIR OUT.h5" "$work/out" \
  && pass "gorp import-hf -h (its short form from before)" || fail "import-hf -h: exit $rc"
expect_usage "no other command takes -h" "unexpected argument '-h'" run cfg.ini -h

expect_usage "options are spelled out in full" "unexpected argument '--ver'" inspect f.h5 --ver
expect_usage "a missing value is named" "option --tp needs a value" plan cfg.ini --tp
expect_usage "--name=value is parsed as --name value" "--tp expects a positive integer, got '0'" \
  plan cfg.ini --tp=0
expect_usage "a flag takes no value" "option --json takes no value" plan cfg.ini --json=yes
expect_usage "a number is checked" "--lr expects a number, got '1e-3x'" \
  fit --model m.h5 --tokens t.txt --lr 1e-3x
expect_usage "a surplus positional argument is named" "unexpected argument 'b.ini'" run a.ini b.ini
expect_usage "a missing positional argument gives the usage" "usage: gorp run CONFIG.ini" run
expect_usage "a missing required option gives the usage" "--max-new N is missing" \
  generate --model m.h5 --tokens t.txt
expect_usage "an option of another command is refused" "unexpected argument '--targets'" \
  generate --model m.h5 --tokens t.txt --max-new 2 --targets t.txt
expect_usage "config: --schema takes no config" "--schema takes no config" config a.ini --schema
run_gorp config --schema
[ "$rc" = 0 ] && grep -q "^| \`run.method\`" "$work/out" && pass "gorp config --schema still prints" \
  || fail "config --schema: exit $rc"

run_gorp
[ "$rc" = 64 ] && grep -q "^usage: gorp COMMAND" "$work/err" && pass "gorp alone: usage, exit 64" \
  || fail "gorp alone: exit $rc"
expect_usage "unknown command" "unknown command 'bogus'" bogus

version=$(sed -nE 's/^project\(gorp VERSION ([0-9.]+).*/\1/p' "$src/CMakeLists.txt")
run_gorp --version
if [ "$rc" = 0 ] && [ -n "$version" ] && grep -Eq "^gorp $version( \(git [0-9a-f]+\))?$" "$work/out"; then
  pass "gorp --version: $(cat "$work/out")"
else
  fail "gorp --version: exit $rc, '$(cat "$work/out")', expected gorp $version"
fi

# an error is one line for a user; GORP_DEBUG=1 (the test environment's default) adds the origin
# and the calls on the way up
GORP_DEBUG= "$GORP" plan "$work/none.ini" >/dev/null 2>"$work/user.err"
GORP_DEBUG=1 "$GORP" plan "$work/none.ini" >/dev/null 2>"$work/debug.err"
[ "$(wc -l <"$work/user.err")" = 1 ] && grep -q "^gorp: error: config file .*none.ini" "$work/user.err" \
  && pass "without GORP_DEBUG the error is one line" || { fail "user error:"; cat "$work/user.err"; }
grep -Eq "^  at .*src/base/fsutil.c:[0-9]+ in fs_open_regular" "$work/debug.err" \
  && [ "$(grep -c '^  at ' "$work/debug.err")" -ge 3 ] \
  && pass "GORP_DEBUG=1 adds the origin and the calls" || { fail "debug error:"; cat "$work/debug.err"; }
finish
