#!/usr/bin/env bash
# The bootstrap's figures: median render + write of one bootstrap with a full
# configuration (goal <= 200 us), and agent start -> exec of epoch 0 with
# that configuration (goal <= 10 ms). See tests/tools/bench_bootstrap.c.
set -u
cd "$(dirname "$0")/../.."
B=${B:-build}
exec "$B/tools/bench_bootstrap" -n "${BENCH_N:-2000}" "$B/pilot-agent" "$B/tools/stamp"
