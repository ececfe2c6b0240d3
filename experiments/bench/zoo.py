"""Training-step time of every registered cell at one shape, each cell in its own process.

    PYTHONPATH=$PWD python experiments/bench/zoo.py [--shape 32x128x128] [--rounds 2]

One step = ``seqjax.unroll`` with its default backend (``"auto"``), a linear readout to the hidden
size at every step, mean squared error, backward and an Adam update (optax), jitted, float32,
input size = hidden size. Each child compiles, warms up, then reports the median of 5 timings of
at least 0.5 s; the parent alternates the order of cells between rounds and prints a Markdown
table (median over rounds, spread = (max - min) / median) with the load average before and after.
JAX only: the fair cross-library comparison of LSTM/GRU/Elman is ``fair.py``.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

import report  # experiments/bench/report.py: load average, machine, spread (beside this script)


def child(name: str, B: int, T: int, H: int) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    import seqjax

    cell = seqjax.cells.get(name, H)
    params = {"cell": cell.init(jax.random.key(0), H), "w": jnp.zeros((H, H), jnp.float32)}
    rng = np.random.default_rng(0)
    xs = jnp.asarray(rng.standard_normal((B, T, H)), jnp.float32)
    ys = jnp.asarray(rng.standard_normal((B, T, H)), jnp.float32)
    tx = optax.adam(1e-3)
    state = tx.init(params)

    def loss(p):
        out, _ = seqjax.unroll(cell, p["cell"], xs)
        return jnp.mean((jnp.real(out) @ p["w"] - ys) ** 2)

    @jax.jit
    def step(p, s):
        g = jax.grad(loss)(p)
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s

    t = time.perf_counter()
    params, state = jax.block_until_ready(step(params, state))
    compile_s = time.perf_counter() - t
    one = time.perf_counter()
    params, state = jax.block_until_ready(step(params, state))
    one = time.perf_counter() - one
    reps = max(1, int(0.5 / max(one, 1e-6)) + 1)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(reps):
            params, state = step(params, state)
        jax.block_until_ready(params)
        times.append((time.perf_counter() - t) / reps)
    n = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(params["cell"]))
    from seqjax import scan

    backend = scan.resolve_auto(cell, T)
    return {"ms": 1e3 * statistics.median(times), "compile_s": compile_s, "params": n,
            "backend": backend}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="32x128x128", help="BxTxH")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    B, T, H = (int(v) for v in args.shape.split("x"))
    if args.child:
        print("RESULT " + json.dumps(child(args.child, B, T, H)), flush=True)
        return
    import seqjax

    names = list(seqjax.cells.names())
    before = report.load_average()
    got = {n: [] for n in names}
    info = {}
    for r in range(args.rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            cmd = [sys.executable, __file__, "--shape", args.shape, "--child", name]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
            if not line:
                print(f"{name}: failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
                continue
            out = json.loads(line[-1][7:])
            got[name].append(out["ms"])
            info[name] = out
            print(f"{name}: {out['ms']:.2f} ms", file=sys.stderr, flush=True)
    after = report.load_average()
    where = f"{report.machine()}; {report.versions('jax', 'jaxlib', 'optax')}"
    print(
        f"Command: `PYTHONPATH=$PWD python experiments/bench/zoo.py --shape {args.shape} "
        f"--rounds {args.rounds}`; {where}; load average before {before}, after {after}\n"
    )
    print("| cell | backend (auto) | parameters | train step, ms (median) | spread | compile, s |")
    print("|---|---|---|---|---|---|")
    for name in names:
        ts = got[name]
        if not ts:
            print(f"| `{name}` | | | failed | | |")
            continue
        med = statistics.median(ts)
        i = info[name]
        spread = report.spread(ts)
        print(f"| `{name}` | {i['backend']} | {i['params']} | {med:.2f} | {spread:.0%} | "
              f"{i['compile_s']:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
