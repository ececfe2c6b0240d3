#!/usr/bin/env bash
# Wall time of a whole sweep with --jobs 2 (one core per run) against --jobs 1 on both cores,
# in alternating order, a fresh workdir each time (docs/benchmarks.md, "Sweeps: jobs 1 vs jobs 2").
# Usage: bash experiments/bench/sweep_jobs.sh [ROUNDS] [CONFIG]   (writes under /tmp/sweep_jobs)
set -u
cd "$(dirname "$0")/../.."
rounds=${1:-2}; config=${2:-configs/sweeps/adding.py:small}; out=/tmp/sweep_jobs
mkdir -p $out
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then order="2:1 1:2"; else order="1:2 2:1"; fi
  for mode in $order; do
    jobs=${mode%:*}; threads=${mode#*:}; d=$out/r$r-jobs$jobs; rm -rf "$d"
    sleep 90  # let the 1-minute load average fall after the previous command's workers
    before=$(cut -d' ' -f1-3 /proc/loadavg); t0=$(date +%s.%N)
    python -m seqjax.cli sweep --config "$config" --workdir "$d" --jobs "$jobs" \
      --threads_per_run "$threads" --status_every 1000 > "$d.log" 2>&1
    rc=$?; t1=$(date +%s.%N)
    echo "round $r --jobs $jobs --threads_per_run $threads: exit $rc," \
      "wall $(python -c "print(round($t1 - $t0, 1))") s; load before $before," \
      "after $(cut -d' ' -f1-3 /proc/loadavg)"
  done
done
