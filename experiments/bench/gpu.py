"""GPU timing of one LSTM training step: seqjax scan vs seqjax cuDNN vs PyTorch cuDNN vs Flax.

One step = forward through a ``--layers``-deep unidirectional LSTM over ``(B, T, I)``, loss
``mean(y**2)``, backward to every weight (no optimizer: the update costs the same for all).
Contenders (each skipped with a printed reason when it cannot run here):

* ``seqjax scan``: ``seqjax.cudnn.lstm_stack(..., backend="scan")`` (``seqjax.unroll`` per layer);
* ``seqjax cudnn``: the same parameters through ``jax.experimental.rnn.lstm`` (cuDNN);
* ``torch cudnn``: ``torch.nn.LSTM`` on ``cuda`` (only if torch with CUDA is installed);
* ``flax``: ``flax.linen.RNN(OptimizedLSTMCell)`` stacked.

Timing: jitted once (compile excluded), then ``--rounds`` rounds in rotated order, each the mean
of ``--iters`` steps after ``block_until_ready`` / ``torch.cuda.synchronize``; the median is
printed as a Markdown table.

Not run yet: the machines of the task that wrote it had no GPU. On a GPU machine:
  PYTHONPATH=$PWD python experiments/bench/gpu.py
  PYTHONPATH=$PWD python experiments/bench/gpu.py --shapes 64x512x512,16x2048x256 --layers 2
On CPU ``--allow-cpu`` runs the contenders that can (a smoke check of the script itself).
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

from seqjax import cudnn
from seqjax.cells import lstm


def seqjax_step(backend: str, B: int, T: int, H: int, L: int):
    cell = lstm(H)
    keys = jax.random.split(jax.random.key(0), L + 1)
    layers = [cell.init(keys[i], H) for i in range(L)]
    xs = jax.random.normal(keys[-1], (B, T, H))

    @jax.jit
    def step(layers, xs):
        def loss(layers):
            ys, _ = cudnn.lstm_stack(layers, xs, backend=backend)
            return jnp.mean(ys**2)

        return jax.value_and_grad(loss)(layers)

    return lambda: jax.block_until_ready(step(layers, xs))


def flax_step(B: int, T: int, H: int, L: int):
    import flax.linen as nn

    class Stack(nn.Module):
        @nn.compact
        def __call__(self, x):
            for _ in range(L):
                x = nn.RNN(nn.OptimizedLSTMCell(H))(x)
            return x

    model = Stack()
    xs = jax.random.normal(jax.random.key(1), (B, T, H))
    params = model.init(jax.random.key(0), xs)

    @jax.jit
    def step(params, xs):
        return jax.value_and_grad(lambda p: jnp.mean(model.apply(p, xs) ** 2))(params)

    return lambda: jax.block_until_ready(step(params, xs))


def torch_step(B: int, T: int, H: int, L: int):
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("torch has no CUDA device")
    torch.backends.cudnn.benchmark = True
    net = torch.nn.LSTM(H, H, num_layers=L, batch_first=True).cuda()
    xs = torch.randn(B, T, H, device="cuda")

    def step():
        net.zero_grad(set_to_none=True)
        ys, _ = net(xs)
        (ys**2).mean().backward()
        torch.cuda.synchronize()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shapes", default="32x128x256,64x256x512,16x1024x128", help="BxTxH,...")
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--allow-cpu", action="store_true", help="run what can run without a GPU")
    args = ap.parse_args()
    if jax.default_backend() != "gpu" and not args.allow_cpu:
        raise SystemExit(
            f"gpu.py: JAX runs on {jax.default_backend()}, not a GPU; run it on a GPU machine "
            "(or pass --allow-cpu for a smoke check of the script)"
        )
    names = ["seqjax scan", "seqjax cudnn", "torch cudnn", "flax"]
    print(f"| B/T/H, {args.layers} layer(s) | " + " | ".join(f"{n} (ms)" for n in names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for shape in args.shapes.split(","):
        B, T, H = map(int, shape.split("x"))
        makers = {
            "seqjax scan": lambda: seqjax_step("scan", B, T, H, args.layers),
            "seqjax cudnn": lambda: seqjax_step("cudnn", B, T, H, args.layers),
            "torch cudnn": lambda: torch_step(B, T, H, args.layers),
            "flax": lambda: flax_step(B, T, H, args.layers),
        }
        steps, skipped = {}, {}
        for name, make in makers.items():
            try:
                steps[name] = make()
                steps[name]()  # compile / warm up
            except Exception as e:  # noqa: BLE001 - report why a contender cannot run here
                skipped[name] = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
                steps.pop(name, None)
        times: dict = {n: [] for n in steps}
        order = list(steps)
        for r in range(args.rounds):
            for name in order[r % len(order) :] + order[: r % len(order)]:
                t0 = time.perf_counter()
                for _ in range(args.iters):
                    steps[name]()
                times[name].append((time.perf_counter() - t0) / args.iters * 1e3)
        cells = [f"{statistics.median(times[n]):.2f}" if n in times else "-" for n in names]
        print(f"| {B}/{T}/{H} | " + " | ".join(cells) + " |")
        for name, why in skipped.items():
            print(f"  skipped {name}: {why}")


if __name__ == "__main__":
    main()
