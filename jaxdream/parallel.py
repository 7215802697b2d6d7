"""How work is spread: every way of mapping a per-example function over a batch.

The algorithm (``carve``, ``oip``) is written for ONE image (or tile) and maps it over a batch
with a *strategy* it is handed: ``strategy.map(fn, tree)`` has the meaning of
``jax.vmap(fn)(tree)`` (``tree``'s leaves share a leading batch axis) and differs only in how the
work is laid out. Strategies are small frozen (hashable) objects, static arguments of the
compiled programs:

- ``VMap()``: one vmapped computation.
- ``Chunked(size)``: ``size`` examples at a time (``lax.map`` over vmapped groups). On CPUs a
  group that fits the caches runs much faster than one huge batch (1.6-1.8x at batch 320).
- ``Sharded(mesh, inner)``: the batch split evenly over the devices of a 1-D ``Mesh``
  (``shard_map``; padded to a multiple of the device count, the padding dropped), each device
  mapping its share with ``inner``. Single-threaded CPU devices (``jaxdream.runtime``) and
  accelerators alike.
- ``Replicated(mesh)`` with ``SplitTiles()`` inside: ONE image on several devices. Every device
  runs the whole per-image function; the inner map (the OIP call over the tiles) is split
  across the devices, with one all-gather per call (measured faster on 2 CPU devices than
  letting XLA partition the resizes: 8 collectives per iteration).

A dream takes an ``Execution``: one strategy over its images and one over each image's tiles.
``auto`` chooses them once, at the edge (``dream``, ``dream_many``, ``oip``), from the devices and
the batch; every entry point takes an explicit choice instead.

>>> import jax.numpy as jnp
>>> Chunked(2).map(lambda x: x * 2, jnp.arange(5.0)).tolist()
[0.0, 2.0, 4.0, 6.0, 8.0]
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from jaxdream.errors import ConfigError

AXIS = "devices"  # the axis name of every mesh made here

Tree = Any


class Strategy(Protocol):
    def map(self, fn: Callable[[Tree], Tree], tree: Tree) -> Tree:
        """``jax.vmap(fn)(tree)``, laid out the strategy's way."""
        ...


def _batch(tree: Tree) -> int:
    return jax.tree.leaves(tree)[0].shape[0]


def _vmap(fn, tree):
    """``jax.vmap(fn)(tree)``; a batch of one is computed without the batching transform (a
    smaller program, a faster first call)."""
    if _batch(tree) == 1:
        out = fn(jax.tree.map(lambda a: a[0], tree))
        return jax.tree.map(lambda a: a[None], out)
    return jax.vmap(fn)(tree)


def pad_batch(tree: Tree, multiple: int) -> Tree:
    """Pad the leading axis to a multiple of ``multiple`` by repeating the last example."""
    pad = -_batch(tree) % multiple
    if not pad:
        return tree
    return jax.tree.map(lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)]), tree)


@dataclasses.dataclass(frozen=True)
class VMap:
    """All examples in one vmapped computation."""

    def map(self, fn, tree):
        return _vmap(fn, tree)


@dataclasses.dataclass(frozen=True)
class Chunked:
    """``size`` examples at a time: ``lax.map`` over vmapped groups, as even as possible (the
    last one padded by repeating the final example)."""

    size: int

    def map(self, fn, tree):
        batch = _batch(tree)
        if batch <= self.size:
            return _vmap(fn, tree)
        groups = -(-batch // self.size)
        chunk = -(-batch // groups)  # as many groups, as even as possible: the least padding
        tree = jax.tree.map(
            lambda a: a.reshape(groups, chunk, *a.shape[1:]), pad_batch(tree, chunk)
        )
        out = jax.lax.map(jax.vmap(fn), tree)
        return jax.tree.map(lambda a: a.reshape(groups * chunk, *a.shape[2:])[:batch], out)


def device_mesh(devices: Sequence[jax.Device] | None = None) -> jax.sharding.Mesh:
    """A 1-D mesh (axis ``AXIS``) over ``devices`` (default: this process's own)."""
    devices = jax.local_devices() if devices is None else list(devices)
    return jax.sharding.Mesh(np.asarray(devices), (AXIS,), axis_types=(jax.sharding.AxisType.Auto,))


@dataclasses.dataclass(frozen=True)
class Sharded:
    """The batch split evenly over the mesh's devices, each mapping its share with ``inner``."""

    mesh: jax.sharding.Mesh
    inner: Strategy = VMap()

    def map(self, fn, tree):
        batch = _batch(tree)
        spec = jax.sharding.PartitionSpec(AXIS)
        local = lambda t: self.inner.map(fn, t)
        out = jax.shard_map(local, mesh=self.mesh, in_specs=spec, out_specs=spec, check_vma=False)(
            pad_batch(tree, self.mesh.size)
        )
        return jax.tree.map(lambda a: a[:batch], out)


@dataclasses.dataclass(frozen=True)
class Replicated:
    """Every device of the mesh computes the whole batch; use ``SplitTiles`` for the maps
    inside ``fn`` so that the devices share their work."""

    mesh: jax.sharding.Mesh

    def map(self, fn, tree):
        spec = jax.sharding.PartitionSpec()
        local = lambda t: _vmap(fn, t)
        return jax.shard_map(local, mesh=self.mesh, in_specs=spec, out_specs=spec, check_vma=False)(
            tree
        )


@dataclasses.dataclass(frozen=True)
class SplitTiles:
    """Inside ``Replicated`` (every device holding the whole batch): each device maps its
    share (padded to an even split) and all devices get all results back (one all-gather)."""

    def map(self, fn, tree):
        n = jax.lax.axis_size(AXIS)
        batch = _batch(tree)
        tree = pad_batch(tree, n)
        share = _batch(tree) // n
        start = jax.lax.axis_index(AXIS) * share
        local = jax.tree.map(lambda a: jax.lax.dynamic_slice_in_dim(a, start, share), tree)
        out = jax.vmap(fn)(local)
        gather = lambda a: jax.lax.all_gather(a, AXIS, tiled=True)[:batch]
        return jax.tree.map(gather, out)


@dataclasses.dataclass(frozen=True)
class Execution:
    """How a batch of dreams is laid out: ``images`` maps the per-image dream over the batch,
    ``tiles`` maps each image's OIP over its tiles."""

    images: Strategy = VMap()
    tiles: Strategy = VMap()


# Examples per vmapped group on one CPU device, and per device on several (benchmarks/NOTES.md:
# groups that fit the caches; for dreams about 10 tiles per device, 2 article dreams of 5 tiles:
# 36.9 ms per dream, against 38.6 ms for 3 and 39.5 ms for 4).
CPU_GROUP_ONE_DEVICE = 32
CPU_GROUP_PER_DEVICE = 16
CPU_DREAM_TILES_PER_DEVICE = 10


# Items (photos, a video's frames) dreamt at once per device, by default (``items_per_device``).
# On CPUs 8 and 64 dreams at once run at the same speed per dream (benchmarks/NOTES.md), so a
# small batch loses nothing and keeps memory low. An accelerator takes photos by the hundred; a
# video's frames in fewer, since a stream also holds the frames decoded ahead of the dream and
# those waiting to be encoded on the host (and bounds them by bytes besides).
CPU_ITEMS_PER_DEVICE = 4
ACCELERATOR_PHOTOS_PER_DEVICE = 256
ACCELERATOR_FRAMES_PER_DEVICE = 16


def items_per_device(platform: str, streamed: bool = False) -> int:
    """How many items one device of ``platform`` (``jax.Device.platform``: ``"cpu"``,
    ``"gpu"``, ``"tpu"``) dreams at once unless told otherwise: the one policy for photos and
    for the frames of a video (``streamed``). On a CPU device ``CPU_ITEMS_PER_DEVICE``; on an
    accelerator ``ACCELERATOR_PHOTOS_PER_DEVICE`` photos, or ``ACCELERATOR_FRAMES_PER_DEVICE``
    frames of a stream. A batch is then bounded by memory, and never larger than the items.

    >>> items_per_device("cpu"), items_per_device("gpu"), items_per_device("gpu", streamed=True)
    (4, 256, 16)
    """
    if platform == "cpu":
        return CPU_ITEMS_PER_DEVICE
    return ACCELERATOR_FRAMES_PER_DEVICE if streamed else ACCELERATOR_PHOTOS_PER_DEVICE


def auto(batch: int, tiles: int = 1, devices: Sequence[jax.Device] | None = None) -> Execution:
    """The execution for ``batch`` examples of ``tiles`` tiles each (``tiles=1``: plain OIP)
    on ``devices`` (default: this process's own, ``jax.local_devices()``; with several
    processes each spreads its own share of the work): the one place where devices are looked
    at.

    - one CPU device: cache-sized chunks of about 32 tiles;
    - several CPU devices: whole examples split over them, in chunks (one image of several
      tiles: replicated, its tiles split);
    - accelerators: one vmap on one device, a batch of several sharded over all (one image
      stays on one device: its few tiles gain nothing from a collective per iteration).
    """
    devices = jax.local_devices() if devices is None else list(devices)
    cpu = devices[0].platform == "cpu"
    if len(devices) == 1:
        return Execution(Chunked(max(1, CPU_GROUP_ONE_DEVICE // tiles))) if cpu else Execution()
    if not cpu:
        return Execution(Sharded(device_mesh(devices))) if batch > 1 else Execution()
    mesh = device_mesh(devices)
    if batch == 1 and tiles > 1:
        return Execution(Replicated(mesh), SplitTiles())
    group = CPU_GROUP_PER_DEVICE if tiles == 1 else round(CPU_DREAM_TILES_PER_DEVICE / tiles)
    return Execution(Sharded(mesh, Chunked(max(1, group))))


def batch_sharding(execution: Execution, batch: int) -> jax.sharding.Sharding | None:
    """Where a batch of ``batch`` examples should lie for ``execution``: split evenly over the
    mesh's devices (a ``NamedSharding``) for ``Sharded`` where ``batch`` divides, else ``None``
    (wherever they are; ``Sharded`` pads them)."""
    images = execution.images
    if isinstance(images, Sharded) and batch % images.mesh.size == 0:
        spec = jax.sharding.PartitionSpec(AXIS)
        return jax.sharding.NamedSharding(images.mesh, spec)
    return None


def run(fn: Callable[[], Tree]) -> Tree:
    """``fn()`` (a compiled call) with its results computed, while this thread stays
    interruptible: a compiled program runs for as long as it takes, and neither its dispatch
    (synchronous for programs with host callbacks) nor a ``block_until_ready`` would let
    Ctrl-C or SIGTERM in before it ends. So a helper thread calls and waits; this one wakes at
    least every 0.1 s to let signals in."""
    done = threading.Event()
    box: dict[str, object] = {}

    def call():
        try:
            box["out"] = jax.block_until_ready(fn())
        except BaseException as e:  # handed to the caller
            box["error"] = e
        finally:
            done.set()

    threading.Thread(target=call, daemon=True).start()
    while not done.wait(0.1):
        pass
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["out"]


def resolve(execution: Execution | str, batch: int, tiles: int = 1) -> Execution:
    """``execution`` itself, or ``auto``'s choice for ``"auto"``; ``"vmap"``: plain vmap."""
    if isinstance(execution, Execution):
        return execution
    if execution == "auto":
        return auto(batch, tiles)
    if execution == "vmap":
        return Execution()
    raise ConfigError(f"parallel must be 'auto', 'vmap' or an Execution, got {execution!r}")
