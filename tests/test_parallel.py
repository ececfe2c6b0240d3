"""Data parallelism (seqjax.train.parallel): the smoke run on a 4-device mesh, in a subprocess with
``--xla_force_host_platform_device_count=4``, against the same run on one device; and two local
processes joined by ``jax.distributed`` over loopback (CPU collectives: gloo)."""

import json
import os
import pathlib
import socket
import subprocess
import sys
import textwrap

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from seqjax.train import config as config_lib
from seqjax.train import parallel

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONFIG = str(ROOT / "configs" / "synthetic" / "adding.py")


def _env(devices: int, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _losses(workdir) -> list:
    rows = [
        json.loads(x) for x in (pathlib.Path(workdir) / "metrics.jsonl").read_text().splitlines()
    ]
    return [(r["split"], r["step"], r["loss"]) for r in rows]


def _params(workdir, step: int = 6) -> list:
    path = pathlib.Path(workdir) / "checkpoints" / str(step) / "state"
    ckptr = ocp.StandardCheckpointer()
    one = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    target = jax.tree.map(
        lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=one),
        ckptr.metadata(path).item_metadata,
    )
    state = ckptr.restore(path, target)
    return [np.asarray(x) for x in jax.tree.leaves(state["train"]["params"])]


def _assert_same_run(a, b, splits=("train", "validation")):
    la = [x for x in _losses(a) if x[0] in splits]
    lb = [x for x in _losses(b) if x[0] in splits]
    assert [x[:2] for x in la] == [x[:2] for x in lb] and len(la) >= 2
    np.testing.assert_allclose([x[2] for x in la], [x[2] for x in lb], rtol=2e-5, atol=1e-6)
    for x, y in zip(_params(a), _params(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)


CHILD = textwrap.dedent(
    """
    import sys, jax
    from seqjax.errors import UserError
    from seqjax.train import loop, parallel
    from seqjax.train.cmdline import load_config_file

    out = sys.argv[1]
    assert jax.device_count() == 4, jax.devices()

    def cfg(**kv):
        c = load_config_file(sys.argv[2] + ":smoke")
        for k, v in kv.items():
            a, b = k.split(".")
            c[a][b] = v
        return c

    loop.train_and_evaluate(cfg(**{"mesh.data": 1}), out + "/one")
    mesh = parallel.make_mesh(cfg(**{"mesh.data": -1}))
    x = parallel.shard_batch(mesh, {"x": jax.numpy.zeros((16, 3))})["x"]
    print("shards", len(x.addressable_shards), x.addressable_shards[0].data.shape)
    loop.train_and_evaluate(cfg(**{"mesh.data": -1}), out + "/all")
    # resume on the mesh: 3 steps, then extended to 6 from the sharded checkpoint at 3
    loop.train_and_evaluate(cfg(**{"mesh.data": -1, "train.num_steps": 3}), out + "/resumed")
    loop.train_and_evaluate(cfg(**{"mesh.data": -1}), out + "/resumed")
    for bad in ({"mesh.data": -1, "train.batch_size": 10}, {"mesh.data": 8}):
        try:
            loop.train_and_evaluate(cfg(**bad), out + "/bad")
        except UserError as e:
            print("UserError:", e)
    """
)


@pytest.mark.slow  # ~30 s on 2 shared cores: one subprocess, four short runs
def test_four_device_mesh_matches_one_device(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), CONFIG],
        env=_env(4),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "shards 4 (4, 3)" in proc.stdout
    _assert_same_run(tmp_path / "one", tmp_path / "all")
    # the resumed run logs its own train windows; its validations and parameters are the same
    _assert_same_run(tmp_path / "one", tmp_path / "resumed", splits=("validation",))
    errors = [line for line in proc.stdout.splitlines() if line.startswith("UserError")]
    assert errors == [
        "UserError: train.batch_size=10: not divisible by the 4 devices of the data mesh "
        "(mesh.data=-1); choose a multiple of 4",
        "UserError: mesh.data=8: only 4 devices are visible (cpu); use -1 for all of them",
    ]
    assert not (tmp_path / "bad").exists()  # refused before anything was written
    # a checkpoint written on the 4-device mesh is read back on this one-device process
    from seqjax.train import loop

    result = loop.evaluate_checkpoint(tmp_path / "all", which="latest")
    expected = [r for r in _losses(tmp_path / "all") if r[:2] == ("validation", 6)]
    assert result["step"] == 6 and result["loss"] == pytest.approx(expected[0][2], rel=1e-5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # ~30 s on 2 shared cores: three processes start and compile
def test_two_processes_over_loopback_match_one_device(tmp_path):
    train = [sys.executable, "-m", "seqjax.cli", "train", "--config", f"{CONFIG}:smoke"]
    single = subprocess.run(
        [*train, "--workdir", str(tmp_path / "one")],
        env=_env(1),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    address = f"127.0.0.1:{_free_port()}"
    procs = [
        subprocess.Popen(
            [*train, "--config.mesh.data=-1", "--workdir", str(tmp_path / "two")],
            env=_env(
                2, JAX_COORDINATOR_ADDRESS=address, JAX_NUM_PROCESSES="2", JAX_PROCESS_ID=str(i)
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        outs = [p.communicate(timeout=600) for p in procs]
    finally:
        for p in procs:  # bounded: never leave a process behind
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    _assert_same_run(tmp_path / "one", tmp_path / "two")


def test_placement_keys_are_run_control():
    for task in ("synthetic", "lm", "classify"):
        assert set(parallel.KEYS) <= config_lib.run_control_keys(task)


@pytest.mark.parametrize("value", [0, -2, 1.5, True, "all"])
def test_bad_mesh_value_names_the_key(value):
    from seqjax.errors import UserError
    from seqjax.train.cmdline import load_config_file

    c = config_lib.to_dict(load_config_file(f"{CONFIG}:smoke"))
    c["mesh"]["data"] = value  # a dict: a ConfigDict would refuse the wrong types itself
    with pytest.raises(UserError, match=r"^mesh\.data=.*a number of devices, or -1 for all"):
        config_lib.validate(c)


def test_one_device_is_the_plain_path():
    from seqjax.train.cmdline import load_config_file

    c = load_config_file(f"{CONFIG}:smoke")
    assert parallel.make_mesh(c) is None
    batch = {"x": np.zeros((4, 2))}
    assert parallel.shard_batch(None, batch) is batch
