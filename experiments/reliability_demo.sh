#!/usr/bin/env bash
# The four faults of docs/reliability.md, on configs/synthetic/adding.py:smoke, as a user meets
# them: SIGTERM mid-run, two trainers on one workdir, a full disk, a leftover partial save.
# Usage: bash experiments/reliability_demo.sh   (writes under /tmp/reldemo)
set -u
cd "$(dirname "$0")/.."  # the repository root; the tmpfs step needs root (mount)
C=configs/synthetic/adding.py:smoke
R=/tmp/reldemo; rm -rf $R; mkdir -p $R
st() { exec python -m seqjax.cli train --config $C --workdir "$1" "${@:2}"; }
echo "== SIGTERM at a random moment past step 1000 (checkpoint_every=1000)"
(st $R/a --config.train.num_steps=100000 --config.train.checkpoint_every=1000 --config.train.eval_every=1000 >$R/a.out 2>$R/a.err) &
pid=$!
while ! grep -q '"step": 1[2-9][0-9][0-9]' $R/a/metrics.jsonl 2>/dev/null; do sleep 0.2; done
t0=$(date +%s.%N); kill -TERM $pid; wait $pid; rc=$?; t1=$(date +%s.%N)
echo "exit $rc after $(python -c "print(round($t1-$t0,2))") s; stderr: $(tail -1 $R/a.err)"
echo "checkpoints: $(ls $R/a/checkpoints | tr '\n' ' ')"
last=$(ls $R/a/checkpoints | sort -n | tail -1)
(st $R/a --config.train.num_steps=$((last+5)) --config.train.checkpoint_every=1000 --config.train.eval_every=1000 >$R/a2.out 2>&1)
echo "restart: $(grep -m1 -i -E 'resum|restor' $R/a2.out)"
echo "== two trainers on one workdir"
(st $R/b --config.train.num_steps=100000 >$R/b.out 2>&1) &
pid=$!; while [ ! -s $R/b/.seqjax.pid ]; do sleep 0.2; done; sleep 1
(st $R/b); echo "second: exit $?"
kill -KILL $pid; wait $pid 2>/dev/null
(st $R/b --config.train.num_steps=20 >/dev/null 2>&1); echo "restart after SIGKILL of the holder: exit $?"
echo "== disk full (600 KiB tmpfs)"
mkdir -p $R/mnt && mount -t tmpfs -o size=600k tmpfs $R/mnt
(st $R/mnt/run --config.train.num_steps=400 --config.train.checkpoint_every=5 --config.train.eval_every=5 --config.train.keep=1000 --config.model.hidden_size=48 >/dev/null 2>$R/c.err)
echo "exit $?; stderr: $(cat $R/c.err)"; echo "left: $(ls $R/mnt/run/checkpoints | tr '\n' ' ')"
umount -l $R/mnt
echo "== leftover tmp dir from a killed save"
mkdir -p $R/a/checkpoints/9999.orbax-checkpoint-tmp-123
(st $R/a --config.train.num_steps=$((last+10)) --config.train.checkpoint_every=1000 --config.train.eval_every=1000 2>&1) | grep -i "removed"
