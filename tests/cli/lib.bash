# Helpers for the tests/cli/*.sh tests (sourced, not run). Each test counts checks and ends with
# the plain closing line "N passed, M failed".
set -uo pipefail
: "${GORP:?GORP must name the gorp binary}"
: "${GORP_DATA:?GORP_DATA must name the shared data folder}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
n_pass=0
n_fail=0

pass() { echo "PASS $*"; n_pass=$((n_pass + 1)); }
fail() { echo "FAIL $*"; n_fail=$((n_fail + 1)); }

# expect_error NAME PATTERN CMD...: CMD must exit non-zero and print PATTERN (grep -E) on stderr.
expect_error() {
  local name=$1 pattern=$2
  shift 2
  if "$@" >"$work/stdout.txt" 2>"$work/err"; then
    fail "$name: exited 0"
  elif grep -Eq -- "$pattern" "$work/err"; then
    pass "$name"
  else
    fail "$name: stderr lacks /$pattern/:"
    sed 's/^/    /' "$work/err"
  fi
}

finish() {
  echo "$n_pass passed, $n_fail failed"
  [ "$n_fail" -eq 0 ]
}
