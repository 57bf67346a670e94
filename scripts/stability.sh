#!/usr/bin/env bash
# Runs the whole test suite RUNS times in a row (default 10) and stops at the first failure.
# Prints one line per run and the tally; each run's output is kept in $LOG_DIR (default: a
# fresh temp directory) for the failing run's details.
#
#   scripts/stability.sh          # 10 runs
#   RUNS=3 scripts/stability.sh   # 3 runs
set -u
cd "$(dirname "$0")/.."
runs="${RUNS:-10}"
log_dir="${LOG_DIR:-$(mktemp -d -t raft-transport-stability-XXXXXX)}"
mkdir -p "$log_dir"
passed=0
for i in $(seq 1 "$runs"); do
  start=$(date +%s)
  if npx vitest run > "$log_dir/run-$i.log" 2>&1; then
    passed=$((passed + 1))
    echo "run $i/$runs: passed in $(( $(date +%s) - start )) s"
  else
    echo "run $i/$runs: FAILED in $(( $(date +%s) - start )) s (output: $log_dir/run-$i.log)"
    grep -E "FAIL|✗|×" "$log_dir/run-$i.log" | head -20
    echo "$passed of $i runs passed"
    exit 1
  fi
done
echo "$passed of $runs runs passed (logs: $log_dir)"
