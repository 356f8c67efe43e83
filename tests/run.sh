#!/usr/bin/env bash
# The test runner: unit tests, end-to-end scripts and fuzz smoke runs. Runs the
# end-to-end scripts a few at a time, keeps each one's output in
# $B/test-logs/, prints the tail of every failure, and ends with the line
# "N passed, N failed". An argument keeps only the tests whose name has it.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
B=${B:-build}
export B=$top/$B TOP=$top
filter=${1:-}
jobs=${TEST_JOBS:-3}
logs=$B/test-logs
rm -rf "$logs"
mkdir -p "$logs"

tests=()
# The unit tests of the sources, not whatever an older build left in $B.
for src in tests/unit/test_*.c; do
	t=$B/unit/$(basename "$src" .c)
	[ -x "$t" ] && tests+=("unit:$t")
done
for t in tests/e2e/*.sh; do
	[ -f "$t" ] && tests+=("e2e:$top/$t")
done
if [ "${SANITIZE:-}" != 1 ] && [ -z "${NO_FUZZ:-}" ] && command -v clang >/dev/null &&
	ls tests/fuzz/fuzz_*.c >/dev/null 2>&1; then
	if make -s fuzz BUILD="${BUILD:-build}" >"$logs/fuzz-build.log" 2>&1; then
		for f in "${BUILD:-build}"/fuzz/fuzz_*; do
			[ -x "$f" ] && tests+=("fuzz:$(cd "$(dirname "$f")" && pwd)/${f##*/}")
		done
	else
		tests+=("fuzz-build:false")
	fi
fi

run_one() {
	local kind=${1%%:*} path=${1#*:} name log rc
	name=$kind-$(basename "$path" .sh)
	log=$logs/$name.log
	case $kind in
	unit) timeout 120 "$path" >"$log" 2>&1 ;;
	e2e) timeout 600 bash "$path" >"$log" 2>&1 ;;
	fuzz)
		local corpus=$top/tests/fuzz/corpus/${name#fuzz-fuzz_} work
		work=$(mktemp -d)
		[ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
		(cd "$work" && timeout 120 "$path" -max_total_time=15 -runs=200000 \
			-rss_limit_mb=1024 "$work") >"$log" 2>&1
		rc=$?
		rm -rf "$work"
		return $rc ;;
	*) "$path" >"$log" 2>&1 ;;
	esac
}

pass=0 fail=0 failed=()
declare -A running=()
start_next() {
	local t=$1 name
	name=${t%%:*}-$(basename "${t#*:}" .sh)
	( run_one "$t"; echo $? >"$logs/$name.rc" ) &
	running[$!]=$name
}
collect() {
	local pid=$1 name=${running[$1]} rc
	rc=$(cat "$logs/$name.rc" 2>/dev/null || echo 1)
	if [ "$rc" = 0 ]; then
		pass=$((pass + 1)); echo "ok   $name"
	else
		fail=$((fail + 1)); failed+=("$name"); echo "FAIL $name (exit $rc)"
	fi
	unset "running[$pid]"
}

for t in "${tests[@]}"; do
	name=${t%%:*}-$(basename "${t#*:}" .sh)
	case $name in *"$filter"*) ;; *) continue ;; esac
	while [ ${#running[@]} -ge "$jobs" ]; do
		wait -n 2>/dev/null
		for pid in "${!running[@]}"; do
			kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; collect "$pid"; }
		done
	done
	start_next "$t"
done
for pid in "${!running[@]}"; do
	wait "$pid" 2>/dev/null
	collect "$pid"
done

for name in "${failed[@]}"; do
	echo "---- $name (last lines of $logs/$name.log)"
	tail -n 40 "$logs/$name.log"
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
