"""Data parallelism on JAX's own runtime: one mesh axis ``"data"``, batch sharded, state replicated.

Synchronous data-parallel SGD (Dean et al. 2012, sec. 4; Goyal et al. 2017, sec. 2): every
device holds the whole model and a slice of the batch, and the gradient of the mean loss over the
global batch is the mean of the per-device gradients. Here nothing of that is written by hand: the
loop puts the parameters and optimizer state on a ``jax.sharding.Mesh`` replicated
(``PartitionSpec()``) and each batch split along its leading axis (``PartitionSpec("data")``), and
``jax.jit`` compiles the unchanged training step into one SPMD program whose reductions over the
batch (the loss mean, hence the gradients) become all-reduces across devices. The loss curve is the
single-device one up to the summation order of floats.

Config (both optional; absent means today's single-device run):

* ``mesh.data``: devices on the data axis; ``1`` (default) one device, ``-1`` all devices of all
  processes, ``n`` the first ``n`` (one process only). ``train.batch_size`` must be a multiple.
* ``distributed.coordinator_address``: ``"host:port"`` of process 0 to join several processes
  (hosts) with :func:`jax.distributed.initialize`, with ``distributed.num_processes`` and
  ``distributed.process_id``; ``"auto"`` lets JAX detect the cluster (Slurm, TPU pods, Open MPI).
  When the config leaves it empty, the environment variables ``JAX_COORDINATOR_ADDRESS``,
  ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` are used if set. See docs/parallel.md.

Every process computes the same global batch (a function of ``(seed, step)``) and places only its
own devices' slices (:func:`jax.make_array_from_callback`), so nothing about the data pipeline
changes with the number of processes.
"""

from __future__ import annotations

import os
from typing import Any, Optional

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from seqjax import schema
from seqjax.errors import UserError

AXIS = "data"


def _devices(n) -> str | None:
    return None if n >= 1 or n == -1 else "must be >= 1, or -1"


#: The fields of this module. They say where a run executes, not what it computes, so a run may
#: resume on another number of devices (``run_control``).
FIELDS: dict[str, schema.Field] = {
    "mesh.data": schema.run_control(
        schema.integer(1, "devices sharing each batch (data parallel): 1 | n | -1 = all")
    )._replace(check=_devices, hint="a number of devices, or -1 for all of them"),
    "distributed.coordinator_address": schema.run_control(
        schema.text(
            "", "host:port of process 0 of a multi-process run; 'auto': detect (Slurm, TPU pods)"
        )
    ),
    "distributed.num_processes": schema.run_control(
        schema.integer(
            None, "processes of a multi-process run (None: JAX_NUM_PROCESSES)", low=1, optional=True
        )
    ),
    "distributed.process_id": schema.run_control(
        schema.integer(None, "this process's index (None: JAX_PROCESS_ID)", low=0, optional=True)
    ),
}
KEYS = tuple(FIELDS)


def _get(config, dotted: str, default: Any = None) -> Any:
    node = config
    for part in dotted.split("."):
        if not hasattr(node, "keys") or part not in node:
            return default
        node = node[part]
    return default if node is None else node


def initialize(config) -> None:
    """Joins the processes of a multi-process run with :func:`jax.distributed.initialize`.

    A no-op when neither the config's ``distributed.coordinator_address`` nor the environment's
    ``JAX_COORDINATOR_ADDRESS`` is set, or when this process has already joined. Must run before
    anything touches a JAX device (the loop calls it first)."""
    address = _get(config, "distributed.coordinator_address", "") or os.environ.get(
        "JAX_COORDINATOR_ADDRESS", ""
    )
    if not address or jax.distributed.is_initialized():
        return
    if address == "auto":
        if os.environ.get("JAX_COORDINATOR_ADDRESS") == "auto":
            del os.environ["JAX_COORDINATOR_ADDRESS"]  # JAX would take it for a host name
        jax.distributed.initialize()
        return
    num = _get(config, "distributed.num_processes") or os.environ.get("JAX_NUM_PROCESSES")
    pid = _get(config, "distributed.process_id")
    if pid is None:
        pid = os.environ.get("JAX_PROCESS_ID")
    if num is None or pid is None:
        raise UserError(
            f"distributed.coordinator_address={address!r}: also give distributed.num_processes and "
            "distributed.process_id (or JAX_NUM_PROCESSES and JAX_PROCESS_ID), or use 'auto' on a "
            "cluster JAX detects (Slurm, TPU pods, Open MPI)"
        )
    num, pid = int(num), int(pid)
    if not 0 <= pid < num:
        raise UserError(
            f"distributed.process_id={pid}: must be in [0, {num}) (distributed.num_processes={num})"
        )
    jax.distributed.initialize(address, num, pid)


def make_mesh(config) -> Optional[Mesh]:
    """The data-parallel mesh of ``config``, or ``None`` for a plain single-device run.

    Raises :class:`UserError` when ``mesh.data`` asks for more devices than there are, when several
    processes do not use all devices, or when ``train.batch_size`` does not split evenly."""
    n = _get(config, "mesh.data", 1)
    total = jax.device_count()
    if n == -1:
        n = total
    if n > total:
        raise UserError(
            f"mesh.data={n}: only {total} devices are visible ({jax.devices()[0].platform}); "
            "use -1 for all of them"
        )
    if jax.process_count() > 1 and n != total:
        raise UserError(
            f"mesh.data={n}: a run of {jax.process_count()} processes must use all {total} "
            "devices; set mesh.data=-1"
        )
    if n == 1:
        return None
    batch_size = config.train.batch_size
    if batch_size % n:
        raise UserError(
            f"train.batch_size={batch_size}: not divisible by the {n} devices of the data mesh "
            f"(mesh.data={_get(config, 'mesh.data')}); choose a multiple of {n}"
        )
    return Mesh(np.asarray(jax.devices()[:n]), (AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def _put(x, sharding: NamedSharding) -> jax.Array:
    """``x`` (the same value in every process) as a global array with ``sharding``."""
    if jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key):
        return jax.random.wrap_key_data(_put(jax.random.key_data(x), sharding))
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def replicate(mesh: Optional[Mesh], tree: Any) -> Any:
    """Every leaf of ``tree`` on every device of ``mesh`` (unchanged when ``mesh`` is None)."""
    if mesh is None:
        return tree
    sharding = replicated(mesh)
    return jax.tree.map(lambda x: _put(x, sharding), tree)


def shard_batch(mesh: Optional[Mesh], batch: dict) -> dict:
    """Each array of ``batch`` split along its leading (batch) axis over the mesh's devices."""
    if mesh is None:
        return batch
    n = mesh.size
    sharding = NamedSharding(mesh, PartitionSpec(AXIS))

    def put(path, x):
        x = np.asarray(x)
        if x.ndim == 0:
            return _put(x, replicated(mesh))
        if x.shape[0] % n:
            name = jax.tree_util.keystr(path)
            raise UserError(
                f"batch{name} has {x.shape[0]} rows: not divisible by the {n} devices of the data "
                f"mesh; choose a train.batch_size that is a multiple of {n}"
            )
        return _put(x, sharding)

    return jax.tree_util.tree_map_with_path(put, batch)


def is_primary() -> bool:
    """Whether this process writes the run's logs (process 0)."""
    return jax.process_index() == 0


class NullWriter:
    """Stands in for :class:`seqjax.train.metrics.MetricWriter` in processes other than 0."""

    def write(self, step: int, split: str, metrics: dict) -> None:
        pass

    def close(self) -> None:
        pass


__all__ = [
    "AXIS",
    "KEYS",
    "FIELDS",
    "NullWriter",
    "initialize",
    "is_primary",
    "make_mesh",
    "replicate",
    "replicated",
    "shard_batch",
]
