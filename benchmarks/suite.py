"""jaxdream's benchmark suite: iteration and dream times, compile times, OIP throughput, many
dreams at once, the second bundled network and a user's Flax network, a cold start through the
persistent compilation cache, and peers side by side.

    python -m benchmarks                    # everything this machine can run, appends history
    python -m benchmarks --quick            # a tiny pass (CI), nothing appended
    python -m benchmarks --peers none       # jaxdream only

Every timing: warm-up call(s) first, ``block_until_ready()``, median over repeats, with min and
max reported as the spread. Compile time is measured apart (trace, lower, compile).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxdream import parallel
from jaxdream.carve import carve_batch, faithful_corrections
from jaxdream.checkpoint import bundled_sample_path, load_model
from jaxdream.config import DreamConfig, Level
from jaxdream.dreaming import dream_call, dream_in_parts, prepare, prepare_rgb
from jaxdream.imageio import load_photo
from jaxdream.model import CNN
from jaxdream.network import Network, as_network, resolved
from jaxdream.objectives import broadcast_objective, channel
from jaxdream.patterns import oip_batch

HERE = Path(__file__).resolve().parent
HISTORY = HERE / "history.jsonl"
PEERS = ("torch-eager", "tf-function", "tf-eager")

WORKLOADS = {
    # The reference workload: 560x560, full image + its 4 quadrants, 4 x 30 steps.
    "article": DreamConfig(levels=(Level(0), Level(1))),
    "cascade": DreamConfig(levels=(Level(0), Level(1), Level(2))),
}


@dataclasses.dataclass(frozen=True)
class Settings:
    size: int = 560
    repeats: int = 7
    oip_batches: tuple[int, ...] = (5, 64, 320)
    many: tuple[int, ...] = (1, 8, 64)
    peers: tuple[str, ...] = PEERS
    # Dream turns per peer: a turn is short (~0.2 s) and one slow jaxdream call in 3 turns moved
    # a ratio by 15% (benchmarks/NOTES.md), so 9; the batch-320 OIP takes a third of them.
    peer_repeats: int = 9
    cold_start: bool = True


QUICK = Settings(
    size=56, repeats=2, oip_batches=(5, 8), many=(1, 2), peers=(), peer_repeats=1, cold_start=False
)


def timed(fn: Callable[[], object], repeats: int, warmup: int = 1) -> dict:
    """Median, min and max seconds of ``fn()`` (which must block until its result is ready)."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return {
        "median_s": statistics.median(samples),
        "min_s": min(samples),
        "max_s": max(samples),
        "repeats": repeats,
    }


def timed_interleaved(
    fns: dict[str, Callable[[], object]], repeats: int, warm: int = 1
) -> dict[str, dict]:
    """``timed`` for several functions in turns (a, b, a, b, ...), so that a slow phase of the
    machine hits all of them alike and their ratio stays honest. Each turn first makes ``warm``
    untimed calls: right after another library's run a program runs slower (its threads and
    caches are cold: jaxdream's article dream 39-48 ms instead of 34 ms straight after a
    PyTorch dream), and each side is timed as it runs in a loop of its own."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            for _ in range(warm):
                fn()
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {
        name: {
            "median_s": statistics.median(s),
            "min_s": min(s),
            "max_s": max(s),
            "repeats": repeats,
            "warm_calls_per_turn": warm,
        }
        for name, s in samples.items()
    }


def _dream_call(model, params, config: DreamConfig, images, execution="auto"):
    """The compiled dream of ``images`` ``(N, H, W)`` as a zero-argument function, and the
    jitted function's arguments (for compile timing), as ``dream_many`` makes them."""
    call = dream_call(model, params, config, images, parallel=execution)
    return lambda: call()[0].block_until_ready(), call


def oip_strategy(batch: int, chunked: bool = True) -> parallel.Strategy:
    """The strategy ``oip`` chooses for ``batch`` images, or the same without chunks."""
    strategy = parallel.auto(batch).images
    if chunked:
        return strategy
    if isinstance(strategy, parallel.Sharded):
        return parallel.Sharded(strategy.mesh)
    return parallel.VMap()


def working_image(size: int) -> jax.Array:
    """The bundled sample photo, gray, standardized, at ``size x size``."""
    gray = jnp.asarray(prepare(load_photo(bundled_sample_path()), (size, size)))
    return gray


def compile_times(model, params, config: DreamConfig, image) -> dict:
    """Trace, lower and compile of the whole dream program, apart, from a cleared cache."""
    jax.clear_caches()
    _, call = _dream_call(model, params, config, image[None])
    t0 = time.perf_counter()
    traced = carve_batch.trace(*call)
    t1 = time.perf_counter()
    lowered = traced.lower()
    t2 = time.perf_counter()
    lowered.compile()
    t3 = time.perf_counter()
    return {"trace_s": t1 - t0, "lower_s": t2 - t1, "compile_s": t3 - t2, "total_s": t3 - t0}


def bench_dream(model, params, config: DreamConfig, image, repeats: int) -> dict:
    run, call = _dream_call(model, params, config, image[None])
    t = timed(run, repeats)
    # The same dream told iteration by iteration (one call each, as under a progress bar),
    # in turns with the whole program: what the bar costs.
    told = timed_interleaved(
        {"whole": run, "told": lambda: dream_in_parts(call, lambda n: None)[0].block_until_ready()},
        repeats,
    )
    return {
        "dream": t,
        "iteration_median_s": t["median_s"] / config.iterations,
        "tiles": config.tile_count(),
        "told_by_iteration": {
            **told,
            "overhead": told["told"]["median_s"] / told["whole"]["median_s"] - 1.0,
        },
    }


def bench_many(model, params, config: DreamConfig, image, counts: Sequence[int], repeats: int):
    out = {}
    for n in counts:
        images = jnp.broadcast_to(image, (n, *image.shape)) + 0.0
        run, _ = _dream_call(model, params, config, images)
        t = timed(run, max(1, repeats // 2) if n > 8 else repeats)
        out[str(n)] = {"dreams_per_s": n / t["median_s"], "per_dream_s": t["median_s"] / n, **t}
    return out


def bench_oip(model, params, batches: Sequence[int], repeats: int, steps: int = 30) -> dict:
    """OIP image-steps per second at each batch size, with the default chunking and without."""
    out = {}
    for b in batches:
        images = jax.random.normal(jax.random.key(b), (b, 28, 28))
        objective = broadcast_objective(channel("conv3", 56), b)
        row = {}
        for label, strategy in (("chunked", oip_strategy(b)), ("one_vmap", oip_strategy(b, False))):
            if label == "chunked" and strategy == oip_strategy(b, False):
                continue

            def run(strategy=strategy, objective=objective, images=images):
                oip_batch(
                    model,
                    params,
                    objective,
                    images,
                    jnp.float32(0.01),
                    jnp.float32(0.0),
                    steps,
                    strategy,
                ).images.block_until_ready()

            start = time.perf_counter()
            run()
            first = time.perf_counter() - start
            t = timed(run, repeats, warmup=0)
            row[label] = {
                "image_steps_per_s": b * steps / t["median_s"],
                "first_call_s": first,
                **t,
            }
        row["best_image_steps_per_s"] = max(v["image_steps_per_s"] for v in row.values())
        out[str(b)] = row
    return out


def bench_conv_impls(params, repeats: int, batch: int = 64, steps: int = 30) -> dict:
    """OIP throughput of each convolution implementation (the options measured)."""
    from jaxdream.model import CONV_IMPLS

    return {
        impl: bench_oip(CNN(conv=impl).resolved(), params, (batch,), repeats, steps)[str(batch)][
            "best_image_steps_per_s"
        ]
        for impl in CONV_IMPLS
    }


class UserCNN(nn.Module):
    """A user's network as docs/own-network.md shows one: a small gray Linen CNN at 28x28 (two
    valid 3x3 convolutions, two max-pools, a dense head), timed at its initial weights; the
    same module initialised on 32x32 RGB is the colour network timed."""

    @nn.compact
    def __call__(self, x):
        x = nn.max_pool(nn.relu(nn.Conv(16, (3, 3), padding="VALID")(x)), (2, 2), (2, 2))
        x = nn.max_pool(nn.relu(nn.Conv(32, (3, 3), padding="VALID")(x)), (2, 2), (2, 2))
        return nn.Dense(10)(x.reshape((x.shape[0], -1)))


def other_networks() -> dict[str, tuple[Network, object, str]]:
    """The networks timed besides the bundled CNN, by label: ``(network, params, layer)``, the
    layer the dream and the OIP carve a map of (the deepest convolution). The colour one is
    the user's CNN on 32x32 RGB input, dreaming the sample photo in colour."""
    cnn56, params56 = load_model("mnist_cnn56")
    module = UserCNN()
    init = module.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))["params"]
    user, params = as_network(module, init)
    init_rgb = module.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))["params"]
    colour, params_rgb = as_network(module, init_rgb)
    return {
        "mnist_cnn56": (resolved(cnn56), params56, "conv4"),
        "user Linen CNN": (user, params, "Conv_1"),
        COLOUR: (colour, params_rgb, "Conv_1"),
    }


COLOUR = "colour Linen CNN"  # the 3-channel network's label


def network_image(network: Network, size: int) -> jax.Array:
    """The photo a network dreams: the bundled sample, gray (``working_image``), or RGB for a
    colour network, standardized as the dream prepares it, at ``size x size``."""
    if network.input_shape[-1] == 1:
        return working_image(size)
    return jnp.asarray(prepare_rgb(load_photo(bundled_sample_path()), (size, size)))


def bench_network(
    network: Network, params, layer: str, image, size: int, batch: int, repeats: int, steps=30
) -> dict:
    """The article's dream at ``size`` carving map 3 of ``layer`` (each tile resized to the
    network's input), and OIP image-steps per second at ``batch`` from noise of its input size."""
    config = WORKLOADS["article"].replace(size=size, objective=f"{layer}:3")
    run, _ = _dream_call(network, params, config, image[None])
    dream_t = timed(run, repeats)
    h, w, c = network.input_shape
    one = (h, w) if c == 1 else (h, w, c)
    images = jax.random.normal(jax.random.key(batch), (batch, *one))
    objective = broadcast_objective(channel(layer, 3), batch)
    strategy = oip_strategy(batch)

    def oip_run():
        oip_batch(
            network, params, objective, images, jnp.float32(0.01), jnp.float32(0.0), steps, strategy
        ).images.block_until_ready()

    oip_t = timed(oip_run, repeats)
    return {
        "input_shape": [int(h), int(w), int(c)],
        "layer": layer,
        "tiles": config.tile_count(),
        "dream": dream_t,
        "oip": {"batch": batch, "image_steps_per_s": batch * steps / oip_t["median_s"], **oip_t},
    }


def cold_start(size: int, processes: int = 4) -> dict:
    """A new process's first dream, through JAX's persistent compilation cache: once with an
    empty cache, then in ``processes - 1`` more processes with the cache the first run filled.
    Each process also times further dreams: on this project's CPU machine the same program runs
    about 20% slower in some processes than in others (benchmarks/NOTES.md), and the spread
    across processes shows which kind the in-process figures came from."""
    cache = tempfile.mkdtemp(prefix="jaxdream-cache-")
    cmd = [sys.executable, "-m", "benchmarks.coldstart", "--cache-dir", cache, "--size", str(size)]
    runs = []
    for _ in range(max(2, processes)):
        done = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=HERE.parent)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {
        "empty_cache": runs[0],
        "warm_cache": runs[1],
        "dream_median_s_per_process": [r["dream_median_s"] for r in runs],
    }


def _json_of(cmd: list[str], env: dict | None = None) -> dict:
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=HERE.parent, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def per_call(size: int, repeats: int = 30) -> dict:
    """What the public call costs over its compiled core (``benchmarks.percall``), for the
    article's 2 tiles and for 5, each in a process of its own."""
    return {
        str(tiles): _json_of(
            [
                sys.executable,
                "-m",
                "benchmarks.percall",
                "--tiles",
                str(tiles),
                "--size",
                str(size),
                "--repeats",
                str(repeats),
            ]
        )
        for tiles in (2, 5)
    }


def start_up(processes: int = 5) -> dict:
    """A user's start-up, warm persistent cache: the first ``jaxdream.dream(photo)`` of a new
    process (``benchmarks.coldstart --public``), and the whole ``jaxdream dream -q -o x.png
    --preset article`` command, wall time, median of ``processes`` runs after one that fills
    the cache."""
    cache = tempfile.mkdtemp(prefix="jaxdream-cache-")
    public = [sys.executable, "-m", "benchmarks.coldstart", "--cache-dir", cache, "--public"]
    runs = [_json_of(public) for _ in range(processes + 1)][1:]
    script = Path(sys.executable).with_name("jaxdream")
    cli = [str(script)] if script.exists() else [sys.executable, "-m", "jaxdream"]
    cli += ["dream", "-q", "-o", str(Path(cache) / "x.png"), "--preset", "article"]
    env = dict(os.environ, JAXDREAM_CACHE_DIR=str(Path(cache) / "cli"))
    walls = []
    for _ in range(processes + 1):
        t0 = time.perf_counter()
        subprocess.run(cli, capture_output=True, check=True, cwd=HERE.parent, env=env)
        walls.append(time.perf_counter() - t0)
    return {
        "first_public_call_s": statistics.median(r["first_dream_s"] for r in runs),
        "import_s": statistics.median(r["import_s"] for r in runs),
        "first_public_call_s_per_process": [r["first_dream_s"] for r in runs],
        "cli_article_wall_s": statistics.median(walls[1:]),
        "cli_article_wall_s_per_process": walls[1:],
        "cli_article_wall_s_filling_the_cache": walls[0],
    }


def bench_peers(
    model,
    params,
    config: DreamConfig,
    image,
    names: Sequence[str],
    repeats: int,
    oip_batch_size: int = 320,
    threads: int | None = None,
    photo: np.ndarray | None = None,
    extra: dict[str, DreamConfig] | None = None,
):
    """Each peer: numerical checks against jaxdream, then its dream time and its OIP throughput
    at ``oip_batch_size``, each timed in turns with jaxdream's: its public call,
    ``jaxdream.dream(photo, config, model=, params=)`` (``photo``: gray, at the working size;
    default: ``image``), and its compiled core. ``threads``: the peer's intra-op threads
    (``None``: its own default). ``extra``: more dreams timed alike, by label (level 0 and
    some quadrants of level 1 only), besides ``config``'s (``"5 tiles"``)."""
    from benchmarks import peers

    out = {}
    gray = np.asarray(image)
    # Channel objectives only; a writeable copy (PyTorch warns on read-only arrays).
    maps = np.array(config.knobs().objective.map, np.int32)
    spec = config.spec(model, gray.shape)
    ours_corr = [np.asarray(c) for c in faithful_corrections(spec, image)]
    tiles28 = _first_tiles(gray)
    mean = tiles28.mean(axis=(1, 2), keepdims=True)
    scale = np.maximum(tiles28.std(axis=(1, 2), keepdims=True), 1 / 28)
    z = (tiles28 - mean) / scale
    ours_oip = np.asarray(
        oip_batch(
            spec.model,
            params,
            broadcast_objective(channel("conv3", maps), 5),
            jnp.asarray(z),
            jnp.float32(config.epsilon),
            jnp.float32(0),
            config.steps,
        ).images
    )
    photo = gray if photo is None else photo

    big = jax.random.normal(jax.random.key(1), (oip_batch_size, 28, 28))
    big_obj = broadcast_objective(channel("conv3", 56), oip_batch_size)
    big_maps = np.full(oip_batch_size, 56, np.int32)

    def ours_oip_big():
        oip_batch(
            spec.model,
            params,
            big_obj,
            big,
            jnp.float32(config.epsilon),
            jnp.float32(0),
            config.steps,
            oip_strategy(oip_batch_size),
        ).images.block_until_ready()

    for name in names:
        try:
            ops = peers.build(name, params, threads)
        except ImportError as e:
            out[name] = {"skipped": f"not installed ({e.name})"}
            continue
        full, quads = peers.faithful_corrections(ops, gray)
        peer_oip = ops.numpy(ops.oip(ops.tensor(z), maps, config.steps, config.epsilon))
        checks = {
            "first_oip_max_abs_diff": float(np.abs(peer_oip - ours_oip).max()),
            "correction_full_max_abs_diff": float(np.abs(full - ours_corr[0]).max()),
            "correction_quadrants_max_abs_diff": float(np.abs(quads - ours_corr[1]).max()),
        }
        n = 1 if name == "tf-eager" else repeats
        row = {"checks": checks, "threads": threads, "workloads": {}}
        for label, cfg in {"5 tiles": config, **(extra or {})}.items():
            row["workloads"][label] = _peer_dream(
                peers, ops, gray, photo, cfg, model, params, image, n
            )
        # The first workload's figures at the top (the history's lines compare these).
        row.update(row["workloads"]["5 tiles"])
        if name != "tf-eager":  # the seed-style eager loop at batch 320 would take minutes
            peer_big = lambda ops=ops: ops.numpy(
                ops.batch_oip(ops.tensor(big), big_maps, config.steps, config.epsilon)
            )
            t = timed_interleaved({"peer": peer_big, "jaxdream": ours_oip_big}, max(1, n // 3))
            steps = oip_batch_size * config.steps
            row["oip"] = {
                "batch": oip_batch_size,
                "peer_image_steps_per_s": steps / t["peer"]["median_s"],
                "jaxdream_image_steps_per_s": steps / t["jaxdream"]["median_s"],
            }
        out[name] = row
    return out


def _peer_dream(peers, ops, gray, photo, config: DreamConfig, model, params, image, n) -> dict:
    """One peer's dream of ``config`` timed in turns with ``jaxdream.dream`` (the public call)
    and jaxdream's compiled core."""
    from jaxdream.dreaming import dream as public_dream

    maps = np.array(config.knobs().objective.map, np.int32)  # writeable (PyTorch)
    quadrants = next((t for lv, t in config.spec(model, gray.shape).levels if lv == 1), ())
    ours_core, _ = _dream_call(model, params, config, image[None])

    def ours_public():
        return public_dream(photo, config, network=model, params=params).image

    def dream():
        return peers.dream(
            ops, gray, maps, config.iterations, config.steps, config.epsilon, quadrants
        )

    start = time.perf_counter()
    dream()
    first = time.perf_counter() - start
    t = timed_interleaved({"peer": dream, "jaxdream": ours_public, "jaxdream_core": ours_core}, n)
    return {
        "tiles": config.tile_count(),
        "first_call_s": first,
        "dream": t["peer"],
        # What a user calls: jaxdream.dream(photo, config, model=, params=) on the gray photo
        # at the working size (the peers get the standardized working image).
        "jaxdream_dream": t["jaxdream"],
        "jaxdream_core_dream": t["jaxdream_core"],
        "ratio_peer_over_jaxdream": t["peer"]["median_s"] / t["jaxdream"]["median_s"],
        "ratio_peer_over_jaxdream_core": t["peer"]["median_s"] / t["jaxdream_core"]["median_s"],
    }


def bench_peers_isolated(
    names: Sequence[str],
    size: int,
    repeats: int,
    oip_batch_size: int,
    thread_counts: Sequence[int] = (1, 2),
) -> dict:
    """``bench_peers``, each peer with jaxdream in a new process of its own
    (``benchmarks/peer_worker.py``), so that one peer's libraries do not slow the next one's
    comparison; once for each of ``thread_counts`` (the peer's intra-op threads), the fastest
    dream kept as the peer's row (each count's figures under ``by_threads``)."""
    out = {}
    for name in names:
        runs = {}
        for threads in thread_counts:
            cmd = [sys.executable, "-m", "benchmarks.peer_worker", name, "--size", str(size)]
            cmd += ["--repeats", str(repeats), "--oip-batch", str(oip_batch_size)]
            cmd += ["--threads", str(threads)]
            done = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent)
            if done.returncode:
                tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
                runs[threads] = {"skipped": f"its process failed: {tail}"}
            else:
                runs[threads] = json.loads(done.stdout.strip().splitlines()[-1])
        timed_runs = {t: r for t, r in runs.items() if "skipped" not in r}
        if not timed_runs:
            out[name] = next(iter(runs.values()))
            continue
        best = min(timed_runs, key=lambda t: timed_runs[t]["dream"]["median_s"])
        out[name] = {
            **timed_runs[best],
            "by_threads": {
                str(t): {
                    "peer_dream_median_s": r["dream"]["median_s"],
                    "ratio_peer_over_jaxdream": r["ratio_peer_over_jaxdream"],
                    "ratios_by_workload": {
                        k: w["ratio_peer_over_jaxdream"] for k, w in r.get("workloads", {}).items()
                    },
                    **(
                        {"peer_oip_image_steps_per_s": r["oip"]["peer_image_steps_per_s"]}
                        if "oip" in r
                        else {}
                    ),
                }
                for t, r in timed_runs.items()
            },
        }
    return out


def _first_tiles(gray: np.ndarray) -> np.ndarray:
    h, w = gray.shape
    x = jnp.asarray(gray)
    quads = x.reshape(2, h // 2, 2, w // 2).transpose(0, 2, 1, 3).reshape(4, h // 2, w // 2)
    resize = lambda t: jax.image.resize(t, (t.shape[0], 28, 28), "bicubic", antialias=True)
    return np.asarray(jnp.concatenate([resize(x[None]), resize(quads)]))


def _git(*args: str) -> str:
    """A git command's output in the repository, or "" where there is no git or no repository
    (a copied working tree on a lent machine)."""
    try:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=HERE.parent, check=False
        )
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def cpu_model() -> str:
    """The CPU's name with its family and model numbers: machines of one name ("AMD EPYC")
    differ by up to 2x between generations, and history lines are compared within one."""
    try:
        with open("/proc/cpuinfo") as f:
            fields = dict(
                (k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in f) if v
            )
    except OSError:
        return platform.processor() or platform.machine()
    name = fields.get("model name", platform.machine())
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def environment() -> dict:
    import flax

    cpu = cpu_model()
    device = jax.devices()[0]
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": commit + ("-dirty" if dirty else ""),
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform()},
        "device": {
            "platform": device.platform,
            "kind": device.device_kind,
            "count": jax.device_count(),
        },
        "versions": {
            "python": platform.python_version(),
            "jax": jax.__version__,
            "jaxlib": jax.lib.__version__ if hasattr(jax.lib, "__version__") else "",
            "flax": flax.__version__,
            "numpy": np.__version__,
        },
    }


def machine_kind(record: dict) -> str:
    m, d = record["machine"], record["device"]
    return f"{m['cpu']} x{m['cores']} / {d['platform']} {d['kind']} x{d['count']}"


def headline(record: dict) -> dict[str, float]:
    """The figures compared between runs (all: lower is better)."""
    out = {}
    for name, w in record.get("workloads", {}).items():
        out[f"{name}.dream_s"] = w["dream"]["median_s"]
        out[f"{name}.compile_s"] = w["compile"]["total_s"]
    for b, row in record.get("oip", {}).items():
        out[f"oip.b{b}.s_per_image_step"] = 1.0 / row["best_image_steps_per_s"]
    for label, w in record.get("networks", {}).items():
        key = label.replace(" ", "_")
        out[f"networks.{key}.dream_s"] = w["dream"]["median_s"]
        out[f"networks.{key}.s_per_oip_image_step"] = 1.0 / w["oip"]["image_steps_per_s"]
    if "start_up" in record:
        out["start_up.first_public_call_s"] = record["start_up"]["first_public_call_s"]
        out["start_up.cli_article_wall_s"] = record["start_up"]["cli_article_wall_s"]
    return out


def compare(record: dict, history: list[dict]) -> list[str]:
    """Lines comparing ``record`` with the last run on the same machine kind; a change beyond
    the larger of 10% and the measured spread is flagged."""
    same = [  # suite runs only: the size sweep's lines (benchmarks.sizes) measure other things
        r for r in history if machine_kind(r) == machine_kind(record) and "workloads" in r
    ]
    if not same:
        return ["no earlier run on this machine kind to compare with"]
    prev, now = headline(same[-1]), headline(record)
    spread = {}
    for name, w in record.get("workloads", {}).items():
        d = w["dream"]
        spread[f"{name}.dream_s"] = (d["max_s"] - d["min_s"]) / d["median_s"]
    for b, row in record.get("oip", {}).items():
        timings = [v for v in row.values() if isinstance(v, dict) and "median_s" in v]
        spread[f"oip.b{b}.s_per_image_step"] = max(
            ((t["max_s"] - t["min_s"]) / t["median_s"] for t in timings), default=0.0
        )
    lines = [f"against {same[-1]['commit']} ({same[-1]['date']}):"]
    for key in sorted(now.keys() & prev.keys()):
        change = now[key] / prev[key] - 1.0
        noise = max(0.10, spread.get(key, 0.0))
        flag = "  REGRESSION" if change > noise else ("  faster" if change < -noise else "")
        lines.append(f"  {key:32s} {prev[key]:.4g} -> {now[key]:.4g} ({change:+.1%}){flag}")
    return lines


def run(settings: Settings, log=print) -> dict:
    model, params = load_model()
    model = model.resolved()  # the backend's compute choices, as dream() and oip() make them
    record = environment()
    record["settings"] = dataclasses.asdict(settings)
    image = working_image(settings.size)
    record["workloads"] = {}
    for name, config in WORKLOADS.items():
        config = config.replace(size=settings.size)
        log(f"[{name}] compile ...")
        comp = compile_times(model, params, config, image)
        log(f"[{name}] dream ...")
        res = bench_dream(model, params, config, image, settings.repeats)
        record["workloads"][name] = {"compile": comp, **res}
    log("[oip] throughput ...")
    record["oip"] = bench_oip(model, params, settings.oip_batches, settings.repeats)
    conv_batch = min(64, max(settings.oip_batches))
    record["conv_impls"] = {
        "batch": conv_batch,
        "image_steps_per_s": bench_conv_impls(
            params, max(2, settings.repeats // 2), batch=conv_batch
        ),
    }
    log("[networks] mnist_cnn56 and a user's Linen CNN, gray and colour ...")
    record["networks"] = {
        label: bench_network(
            net,
            p,
            layer,
            network_image(net, settings.size),
            settings.size,
            conv_batch,
            settings.repeats,
        )
        for label, (net, p, layer) in other_networks().items()
    }
    log("[many] dreams at once ...")
    article = WORKLOADS["article"].replace(size=settings.size)
    record["many"] = bench_many(model, params, article, image, settings.many, settings.repeats)
    if settings.cold_start:
        log("[cold start] new processes ...")
        record["cold_start"] = cold_start(settings.size)
        log("[per call] the public call over its core ...")
        record["per_call"] = per_call(settings.size)
        log("[start-up] first public call, whole CLI process ...")
        record["start_up"] = start_up()
    if settings.peers:
        log(f"[peers] {', '.join(settings.peers)} ...")
        record["peers"] = bench_peers_isolated(
            settings.peers, settings.size, settings.peer_repeats, max(settings.oip_batches)
        )
        record["peers_isolated"] = True
        log("[peers] each side in a process of its own, in turns ...")
        record["peers_apart"] = bench_peers_apart(
            record["peers"], settings.size, settings.peer_repeats
        )
    return record


def bench_peers_apart(
    peers: dict, size: int, turns: int, thread_counts: Sequence[int] = (1, 2)
) -> dict:
    """Issue 22's protocol (``benchmarks/turns.py``): each peer, ``jaxdream.dream()`` and
    jaxdream's core, each in a process of its own, in turns; 5 tiles and the article's 2, each
    at every one of ``thread_counts`` for the peer, the fastest kept (a peer's best setting
    differs between the workloads: TF's 2-tile dream took 78 ms at 1 thread, 142 ms at 2)."""
    from benchmarks import turns as turns_

    out = {}
    for name, row in peers.items():
        if "skipped" in row or name == "tf-eager":  # the seed-style loop: seconds a dream
            continue
        try:
            out[name] = {}
            for tiles in (5, 2):
                runs = [turns_.alternate(name, tiles, size, t, turns) for t in thread_counts]
                best = min(runs, key=lambda r: r["peer"]["median_s"])
                best["by_threads"] = {
                    str(r["threads"]): {
                        "peer_median_s": r["peer"]["median_s"],
                        "ratio_peer_over_jaxdream": r["ratio_peer_over_jaxdream"],
                    }
                    for r in runs
                }
                out[name][f"{tiles} tiles"] = best
        except RuntimeError as e:
            out[name] = {"skipped": str(e)}
    return out


def table(record: dict) -> str:
    """The record as a Markdown table."""
    lines = ["| figure | value |", "| --- | --- |"]
    for name, w in record["workloads"].items():
        d = w["dream"]
        lines.append(
            f"| {name}: one dream ({w['tiles']} tiles) | {d['median_s'] * 1e3:.1f} ms "
            f"(min {d['min_s'] * 1e3:.1f}, max {d['max_s'] * 1e3:.1f}) |"
        )
        lines.append(f"| {name}: one iteration | {w['iteration_median_s'] * 1e3:.1f} ms |")
        if "told_by_iteration" in w:
            t = w["told_by_iteration"]
            lines.append(
                f"| {name}: told by iteration (progress bar) | "
                f"{t['told']['median_s'] * 1e3:.1f} ms against {t['whole']['median_s'] * 1e3:.1f}"
                f" ms whole ({t['overhead']:+.1%}) |"
            )
        c = w["compile"]
        lines.append(
            f"| {name}: compile (trace + lower + compile) | {c['total_s']:.2f} s "
            f"({c['trace_s']:.2f} + {c['lower_s']:.2f} + {c['compile_s']:.2f}) |"
        )
    for b, row in record["oip"].items():
        parts = ", ".join(
            f"{k} {v['image_steps_per_s']:,.0f}" for k, v in row.items() if isinstance(v, dict)
        )
        lines.append(f"| OIP image-steps/s, batch {b} | {parts} |")
    if "conv_impls" in record:
        b = record["conv_impls"]["batch"]
        for impl, v in record["conv_impls"]["image_steps_per_s"].items():
            lines.append(f"| OIP image-steps/s, batch {b}, conv={impl} | {v:,.0f} |")
    for label, w in record.get("networks", {}).items():
        d, o = w["dream"], w["oip"]
        shape = "x".join(str(n) for n in w["input_shape"])
        lines.append(
            f"| {label} ({shape}): one dream ({w['tiles']} tiles), {w['layer']}:3 | "
            f"{d['median_s'] * 1e3:.1f} ms (min {d['min_s'] * 1e3:.1f}, max "
            f"{d['max_s'] * 1e3:.1f}) |"
        )
        lines.append(
            f"| {label}: OIP image-steps/s, batch {o['batch']} | {o['image_steps_per_s']:,.0f} |"
        )
    for n, row in record["many"].items():
        lines.append(
            f"| {n} dreams at once | {row['dreams_per_s']:.1f} dreams/s "
            f"({row['per_dream_s'] * 1e3:.1f} ms per dream) |"
        )
    if "cold_start" in record:
        for k in ("empty_cache", "warm_cache"):
            lines.append(
                f"| new process, {k.replace('_', ' ')}: first dream call | "
                f"{record['cold_start'][k]['first_call_s']:.2f} s |"
            )
        per_process = record["cold_start"].get("dream_median_s_per_process")
        if per_process:
            lines.append(
                f"| article dream, median in each of {len(per_process)} new processes | "
                + " / ".join(f"{t * 1e3:.1f}" for t in per_process)
                + " ms |"
            )
    for tiles, r in record.get("per_call", {}).items():
        over = r["api_over_core_ms"]["wall_s"]
        lines.append(
            f"| `jaxdream.dream(gray, config, model=, params=)` over its compiled core, {tiles} "
            f"tiles | {over:+.1f} ms ({r['api']['wall_s'] * 1e3:.1f} vs "
            f"{r['core']['wall_s'] * 1e3:.1f} ms) |"
        )
        lines.append(
            f"| `jaxdream.dream(gray, config)` (no params) over passing them, {tiles} tiles | "
            f"{r['no_params_over_params_ms']['wall_s']:+.1f} ms |"
        )
    if "start_up" in record:
        u = record["start_up"]
        lines.append(
            f"| new process, warm cache: the first `jaxdream.dream(photo)` | "
            f"{u['first_public_call_s']:.2f} s (after importing it in {u['import_s']:.2f} s) |"
        )
        lines.append(
            f"| `jaxdream dream -q -o x.png --preset article`, whole process, warm cache | "
            f"{u['cli_article_wall_s']:.2f} s wall |"
        )
    for name, by_tiles in record.get("peers_apart", {}).items():
        if "skipped" in by_tiles:
            lines.append(f"| peer {name}, processes apart | skipped: {by_tiles['skipped']} |")
            continue
        for label, w in by_tiles.items():
            others = "; ".join(
                f"{t} thread(s) {b['peer_median_s'] * 1e3:.1f} ms"
                for t, b in w.get("by_threads", {}).items()
            )
            lines.append(
                f"| peer {name} ({w['threads']} thread(s)), processes apart: {label} | "
                f"{w['peer']['median_s'] * 1e3:.1f} ms = **{w['ratio_peer_over_jaxdream']:.2f}x** "
                f"`jaxdream.dream()`'s {w['jaxdream']['median_s'] * 1e3:.1f} ms, "
                f"{w['ratio_peer_over_jaxdream_core']:.2f}x its core's "
                f"{w['jaxdream-core']['median_s'] * 1e3:.1f} ms"
                + (f" (the peer at {others})" if others else "")
                + " |"
            )
    for name, p in record.get("peers", {}).items():
        if "skipped" in p:
            lines.append(f"| peer {name} | skipped: {p['skipped']} |")
            continue
        worst = max(p["checks"].values())
        peer_ms, ours_ms = p["dream"]["median_s"] * 1e3, p["jaxdream_dream"]["median_s"] * 1e3
        threads = f", {p['threads']} thread(s)" if p.get("threads") else ""
        core = ""
        if "jaxdream_core_dream" in p:
            core = (
                f"; {p['ratio_peer_over_jaxdream_core']:.1f}x its compiled core's "
                f"{p['jaxdream_core_dream']['median_s'] * 1e3:.1f} ms"
            )
        lines.append(
            f"| peer {name}{threads}: one dream | {peer_ms:.1f} ms = "
            f"{p['ratio_peer_over_jaxdream']:.1f}x jaxdream.dream()'s {ours_ms:.1f} ms in the "
            f"same turns{core} (checks: max abs diff {worst:.1e}) |"
        )
        for label, w in p.get("workloads", {}).items():
            lines.append(
                f"| peer {name}: {label} | {w['dream']['median_s'] * 1e3:.1f} ms = "
                f"{w['ratio_peer_over_jaxdream']:.2f}x jaxdream.dream()'s "
                f"{w['jaxdream_dream']['median_s'] * 1e3:.1f} ms, "
                f"{w['ratio_peer_over_jaxdream_core']:.2f}x its core's "
                f"{w['jaxdream_core_dream']['median_s'] * 1e3:.1f} ms |"
            )
        for t, b in p.get("by_threads", {}).items():
            lines.append(
                f"| peer {name} with {t} thread(s) | {b['peer_dream_median_s'] * 1e3:.1f} ms "
                f"({b['ratio_peer_over_jaxdream']:.1f}x) |"
            )
        if "oip" in p:
            o = p["oip"]
            lines.append(
                f"| peer {name}: OIP image-steps/s, batch {o['batch']} | "
                f"{o['peer_image_steps_per_s']:,.0f} (jaxdream "
                f"{o['jaxdream_image_steps_per_s']:,.0f} in the same turns) |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="a tiny pass (CI); implies --no-history"
    )
    parser.add_argument("--size", type=int, help="working size (default 560)")
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--oip-batches", type=int, nargs="+")
    parser.add_argument("--many", type=int, nargs="+", help="numbers of images dreamt at once")
    parser.add_argument("--peers", nargs="+", help=f"of {', '.join(PEERS)}, or 'none'")
    parser.add_argument("--no-cold-start", action="store_true")
    parser.add_argument("--history", default=str(HISTORY), help="JSON-lines file to append to")
    parser.add_argument("--no-history", action="store_true")
    parser.add_argument("--json", help="also write this run's record here")
    args = parser.parse_args(argv)
    s = QUICK if args.quick else Settings()
    changes = {
        k: v
        for k, v in {
            "size": args.size,
            "repeats": args.repeats,
            "oip_batches": tuple(args.oip_batches or ()) or None,
            "many": tuple(args.many or ()) or None,
        }.items()
        if v
    }
    if args.peers:
        changes["peers"] = () if args.peers == ["none"] else tuple(args.peers)
    if args.no_cold_start:
        changes["cold_start"] = False
    s = dataclasses.replace(s, **changes)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)
    record = run(s, log)
    print(table(record))
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1))
    if not (args.quick or args.no_history):
        path = Path(args.history)
        history = (
            [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
            if (path.exists())
            else []
        )
        print("\n".join(compare(record, history)))
        with path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(f"appended to {path}")
    return 0
