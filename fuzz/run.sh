#!/usr/bin/env bash
# Bounded atheris run of every harness: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
# Each target starts from a copy of its seed corpus (fuzz/corpus/<target>, left untouched) and
# runs for SECONDS_PER_TARGET (default 60). libFuzzer's last line ("Done N runs in S second(s)")
# gives the cases and seconds; a finding stops the target, prints the input, saves it as
# fuzz/findings/crash-* and makes the script exit non-zero. Temporary files go under a directory
# removed on exit. Needs `pip install atheris`.
set -u
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=${*:-validation idx weights image}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p fuzz/findings
status=0
for target in $targets; do
  cp -r "fuzz/corpus/$target" "$work/$target"
  echo "== fuzz_$target: ${seconds}s"
  TMPDIR="$work" PYTHONPATH=.:fuzz${PYTHONPATH:+:$PYTHONPATH} python fuzz/"fuzz_$target.py" "$work/$target" \
    -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 -artifact_prefix=fuzz/findings/ \
    -print_final_stats=1 2>&1 | grep -E "^(Done|==|stat::number_of_executed_units|stat::new_units_added)|Uncaught|Error|assert"
  rc=${PIPESTATUS[0]}  # the harness's exit status, not grep's
  test "$rc" -eq 0 || status=1
done
exit $status
