#!/usr/bin/env bash
# Runs every Fuzz target in the module for a bounded time each (default 20s).
# Seed corpora live next to the code in testdata/fuzz/<Target>/.
set -euo pipefail
fuzztime="${1:-20s}"
status=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u || true)
  for t in $targets; do
    echo "fuzz $pkg $t for $fuzztime"
    # Minimization is bounded: by default each input that finds new
    # coverage is minimized for up to 60 s, and on inputs of kilobytes (a
    # real MP4 segment, an export ZIP) that leaves a few execs per second.
    if ! go test -run '^$' -fuzz "^${t}\$" -fuzztime "$fuzztime" -fuzzminimizetime "${FUZZ_MINIMIZE:-1000x}" "$pkg" >/tmp/cordon-fuzz.log 2>&1; then
      cat /tmp/cordon-fuzz.log
      status=1
    else
      tail -n 1 /tmp/cordon-fuzz.log
    fi
  done
done
exit $status
