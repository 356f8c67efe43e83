#!/usr/bin/env bash
# make bench: every issue's figures, medians, each script printing its own.
set -u
cd "$(dirname "$0")/../.."
export B=${B:-build}
rc=0
python3 tests/bench/supervise.py || rc=1
for s in tests/bench/*.sh; do
	[ "$s" = tests/bench/run.sh ] && continue
	[ -f "$s" ] && { bash "$s" || rc=1; }
done
exit $rc
