"""The engine core: objectives driving dreams, the retrace guard, tile layouts, the parallel
strategies, the backend's compute choices, and the project's own errors for bad input through
the API (no NaN reaches an image)."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdream import compute, parallel
from jaxdream.carve import carve_batch
from jaxdream.config import DreamConfig, Level
from jaxdream.display import Display, to_uint8
from jaxdream.dreaming import dream, dream_call, dream_many
from jaxdream.errors import JaxdreamError, NumericalError
from jaxdream.imageio import save_image
from jaxdream.layouts import Grid, Overlap, _overlap_plan
from jaxdream.model import CNN, Features, max_pool_2x2
from jaxdream.objectives import channel, logit, neuron, parse_objective, stack_objectives

SMALL = dict(size=64, iterations=2, steps=3)


# --------------------------------------------------------------------------- objectives


def test_stacked_objectives_of_mixed_structure_give_each_tile_its_own(tiny):
    model, params = tiny
    objectives = [
        logit(3),
        channel("conv3", 2),
        0.7 * channel("conv3", 1) + 0.3 * channel("conv2", 4),
        channel("conv3", -1),
        neuron("conv2", 1, 2, 3) - 0.5 * logit(7),
        channel("conv3", 5),
    ]
    stacked = stack_objectives(objectives)
    xs = jax.random.normal(jax.random.key(0), (len(objectives), 28, 28))

    def value(obj, x):
        return obj(Features(model, params, x))

    got = jax.vmap(jax.value_and_grad(value, argnums=1))(stacked, xs)
    for i, obj in enumerate(objectives):
        want = jax.value_and_grad(value, argnums=1)(obj, xs[i])
        np.testing.assert_allclose(got[0][i], want[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got[1][i], want[1], rtol=1e-5, atol=1e-7)


def test_stacking_objectives_of_one_structure_keeps_one_structure():
    stacked = stack_objectives([channel("conv3", 5), channel("conv3", 7), channel("conv3", 1)])
    assert stacked.may_be_whole is False and np.asarray(stacked.map).tolist() == [5, 7, 1]
    sums = stack_objectives(
        [parse_objective("0.7*conv3:5+0.3*conv2:1"), parse_objective("conv3:2+conv2:9")]
    )
    weights = [np.asarray(w).tolist() for w, _ in sums.terms]
    assert weights == [pytest.approx([0.7, 1.0]), pytest.approx([0.3, 1.0])]


def test_an_objective_dream_equals_the_map_dream(bundled, smooth_image):
    _, params = bundled
    by_map = dream(smooth_image, DreamConfig(**SMALL, map=12), params=params)
    by_objective = dream(smooth_image, DreamConfig(**SMALL, objective="conv3:12"), params=params)
    np.testing.assert_array_equal(by_map.image, by_objective.image)


@pytest.mark.parametrize(
    "objective", ["logit:9", "0.7*conv3:56 + 0.3*conv2:12", "conv3:56 - 0.1*logit:3", "dense"]
)
def test_any_objective_drives_a_dream(bundled, smooth_image, objective):
    _, params = bundled
    base = dream(smooth_image, DreamConfig(**SMALL), params=params)
    result = dream(smooth_image, DreamConfig(**SMALL, objective=objective), params=params)
    assert np.all(np.isfinite(result.image))
    assert np.abs(result.image - result.gray).mean() > 1e-3  # it carved something
    assert not np.allclose(result.image, base.image, atol=1e-3)  # and not map 56's pattern


def test_per_tile_objectives_act_on_their_tiles(bundled, smooth_image):
    _, params = bundled
    levels = (Level(1, objective=("conv3:56", "conv3:56", "conv3:56", "logit:3")),)
    mixed = dream(smooth_image, DreamConfig(**SMALL, levels=levels), params=params)
    same = dream(smooth_image, DreamConfig(**SMALL, levels=(Level(1),)), params=params)
    diff = np.abs(mixed.image - same.image)
    h, w = diff.shape
    # Only tile 3 changed its objective; the others move with the global standardization.
    assert diff[h // 2 :, w // 2 :].mean() > 3 * diff[: h // 2, : w // 2].mean()


# --------------------------------------------------------------------------- retrace guard


@pytest.mark.parametrize("path", ["traced", "exported"])
def test_a_dream_compiles_once_for_other_maps_weights_epsilon_and_seeds(
    bundled, path, tmp_path, monkeypatch
):
    """Numbers never make a new program, on either path a dream takes: traced (no persistent
    cache: ``carve_batch``'s own cache) or exported into the persistent cache (once the CLI
    has turned it on, as any earlier test may have: the exported programs made)."""
    import importlib

    import jax

    from jaxdream import cache

    _, params = bundled
    store = importlib.import_module("jaxdream.programs")
    monkeypatch.setattr(store, "_EXPORTED", store.Bounded(8))
    before_dir = jax.config.jax_compilation_cache_dir
    if path == "exported":
        cache.enable_compilation_cache(tmp_path / "xla")
    else:
        jax.config.update("jax_compilation_cache_dir", None)

    def programs():
        if path == "exported":
            return len(list((tmp_path / "xla" / cache.EXPORTED_FOLDER).glob("*.jaxexport")))
        return store.compiled_count(carve_batch)

    rng = np.random.default_rng(0)
    photos = [rng.random((40, 56)).astype(np.float32) for _ in range(2)]
    configs = [
        DreamConfig(size=56, iterations=1, steps=2, objective="0.7*conv3:56 + 0.3*conv2:12"),
        DreamConfig(size=56, iterations=1, steps=2, objective="0.2*conv3:3 + 0.8*conv2:40"),
        DreamConfig(
            size=56, iterations=1, steps=2, objective="1.5*conv3:9 + -1*conv2:0", epsilon=0.03
        ),
        DreamConfig(
            size=56,
            iterations=1,
            steps=2,
            objective="0.5*conv3:1 + 0.5*conv2:2",
            seed=7,
            conv_criterion=1e-4,
            levels=(Level(0), Level(1, tiles=(3,), weight=0.25)),
        ),
    ]
    try:
        dream(photos[0], configs[0], params=params)
        before = programs()
        for config in configs[1:]:
            for photo in photos:
                dream(photo, config, params=params)
        assert programs() == before, "the dream recompiled for changed numbers"
        dream(photos[0], configs[0].replace(steps=3), params=params)  # steps are static
        assert programs() == before + 1
    finally:
        jax.config.update("jax_compilation_cache_dir", before_dir)


# --------------------------------------------------------------------------- layouts


@pytest.mark.parametrize(
    "shape, level, fraction", [((64, 96), 1, 0.25), ((96, 64), 2, 0.5), ((32, 32), 1, 0.9)]
)
def test_overlap_windows_are_a_partition_of_unity(shape, level, fraction):
    origins, windows = _overlap_plan(Overlap(fraction), shape, level)
    total = np.zeros(shape)
    for (y, x), w in zip(origins, windows, strict=True):
        assert y >= 0 and x >= 0 and y + w.shape[0] <= shape[0] and x + w.shape[1] <= shape[1]
        total[y : y + w.shape[0], x : x + w.shape[1]] += w
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
    assert windows.shape[1] > shape[0] // 2**level  # the tiles do overlap


def test_overlap_cut_and_place_agree_with_the_grid_at_zero():
    x = jax.random.normal(jax.random.key(0), (32, 48))
    np.testing.assert_array_equal(Overlap(0.0).cut(x, 1, (0, 3)), Grid().cut(x, 1, (0, 3)))
    tiles = Overlap(0.4).cut(x, 2, range(16))
    np.testing.assert_allclose(Overlap(0.4).place(tiles, (32, 48), 2, range(16)), x, atol=1e-5)


@pytest.mark.parametrize("shift", [False, True])
def test_overlap_with_zero_steps_returns_the_input(bundled, smooth_image, shift):
    _, params = bundled
    levels = (Level(0), Level(1), Level(2, tiles=(0, 5, 15), weight=0.5))
    cfg = DreamConfig(size=64, iterations=3, steps=0, levels=levels, overlap=0.3, shift_tiles=shift)
    result = dream(smooth_image, cfg, params=params)
    np.testing.assert_allclose(result.image, result.gray, atol=2e-5)


def _seam_activity(change: np.ndarray) -> float:
    """Mean change in bands along the quadrant borders, over the mean change: plain quadrants
    leave their borders nearly uncarved (a tile's OIP changes its edges little), which is what
    makes the seams visible."""
    h, w = change.shape
    a, b = np.abs(change), max(1, h // 32)
    seams = np.concatenate(
        [a[h // 2 - b : h // 2 + b].ravel(), a[:, w // 2 - b : w // 2 + b].ravel()]
    )
    return float(seams.mean() / a.mean())


def test_overlapping_tiles_hide_the_seams(bundled, smooth_image):
    _, params = bundled
    cfg = DreamConfig(size=96, iterations=2, steps=10, levels=(Level(1),))
    grid = dream(smooth_image, cfg, params=params)
    overlap = dream(smooth_image, cfg.replace(overlap=0.5), params=params)
    at_grid = _seam_activity(grid.image - grid.gray)
    at_overlap = _seam_activity(overlap.image - overlap.gray)
    # Measured: 0.45 for the grid, 0.98 with overlap 0.5 (0.32 and 1.09 on the cat photo).
    assert at_grid < 0.6 and at_overlap > 0.8, (at_grid, at_overlap)


# --------------------------------------------------------------------------- parallel


@pytest.mark.parametrize("strategy", [parallel.VMap(), parallel.Chunked(2), parallel.Chunked(7)])
def test_strategies_compute_what_vmap_computes(strategy):
    tree = {"a": jnp.arange(5.0), "b": jnp.arange(10.0).reshape(5, 2)}
    fn = lambda t: {"s": t["a"] * t["b"].sum(), "n": t["b"] ** 2}
    want = jax.vmap(fn)(tree)
    got = jax.jit(lambda t: strategy.map(fn, t))(tree)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key])


def test_auto_on_one_cpu_device_chunks_by_tiles():
    assert parallel.auto(1, 5) == parallel.Execution(parallel.Chunked(6))
    assert parallel.auto(320) == parallel.Execution(parallel.Chunked(32))


def test_a_chosen_execution_gives_the_same_dream(bundled, smooth_image):
    _, params = bundled
    photos = [smooth_image, smooth_image[::-1].copy(), smooth_image * 0.5]
    cfg = DreamConfig(**SMALL, levels=(Level(0), Level(1)))
    auto = dream_many(photos, cfg, params=params)
    for execution in ("vmap", parallel.Execution(parallel.Chunked(2))):
        other = dream_many(photos, cfg, params=params, parallel=execution)
        for a, b in zip(auto, other, strict=True):
            np.testing.assert_allclose(a.image, b.image, atol=1e-5)


SCRIPT = r"""
import json
import numpy as np
from jaxdream import DreamConfig, Level, dream, dream_many, load_model, parallel, oip, channel
from jaxdream.patterns import noise_images
import jax, jax.numpy as jnp
_, params = load_model()
photo = np.random.default_rng(0).random((40, 56)).astype(np.float32)
cfg = DreamConfig(size=56, iterations=2, steps=3, levels=(Level(0), Level(1)), objective=%r)
photos = [photo, photo[::-1].copy(), photo * 0.5]
out = {"devices": jax.device_count(), "execution": {}}
for name in ("auto", "vmap"):
    one = dream(photo, cfg, params=params, parallel=name)
    many = dream_many(photos, cfg, params=params, parallel=name)
    o = oip(params, channel("conv3", jnp.arange(5)), noise_images(jax.random.key(0), 5),
            steps=3, parallel=name)
    out[name] = {"one": one.image.tolist(), "many": [m.image.tolist() for m in many],
                 "oip": np.asarray(o.images).tolist()}
out["execution"] = {"one": repr(parallel.auto(1, 5)), "many": repr(parallel.auto(3, 5))}
print(json.dumps(out))
"""


def test_simulated_devices_give_the_single_device_dream():
    """Three CPU devices (an odd count: the batch is padded) in a process of their own."""
    from jaxdream.runtime import cpu_flags

    env = dict(os.environ, XLA_FLAGS=cpu_flags(3))
    script = SCRIPT % "0.7*conv3:56 + 0.3*logit:2"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["devices"] == 3
    assert "Replicated" in out["execution"]["one"] and "Sharded" in out["execution"]["many"]
    for part in ("one", "many", "oip"):
        np.testing.assert_allclose(out["auto"][part], out["vmap"][part], atol=1e-4)


# --------------------------------------------------------------------------- compute


def test_backend_choices():
    assert compute.resolve(CNN(), "cpu").conv == "im2col"
    assert compute.resolve(CNN(), "cpu").fusion_guard is True
    for accelerator in ("gpu", "tpu", "some-new-backend"):
        made = compute.resolve(CNN(), accelerator)
        assert made.conv == "xla" and made.fusion_guard is False
    kept = compute.resolve(CNN(conv="fast", fusion_guard=False), "cpu")
    assert kept.conv == "fast" and kept.fusion_guard is False


def test_dream_config_compute_choices_reach_the_model(bundled):
    model, _ = bundled
    spec = DreamConfig(conv="xla", precision="default").spec(model, (56, 56))
    assert spec.model.conv == "xla" and spec.model.precision == "default"
    assert DreamConfig().spec(model, (56, 56)).model.conv == compute.choices().conv


def test_the_fusion_guard_does_not_change_the_gradient():
    x = jax.random.normal(jax.random.key(1), (9, 7, 3))
    probe = jax.random.normal(jax.random.key(2), (4, 3, 3))
    grads = [jax.grad(lambda x, g=g: jnp.sum(max_pool_2x2(x, g) * probe))(x) for g in (True, False)]
    np.testing.assert_array_equal(*grads)


def _products(jaxpr):
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in ("dot_general", "conv_general_dilated"):
            yield eqn.params["precision"]
        for sub in jax.core.jaxprs_in_params(eqn.params):
            yield from _products(sub)


@pytest.mark.parametrize("conv", ["im2col", "xla", "fast"])
def test_every_matrix_product_of_a_dream_states_full_float32(bundled, conv):
    model, params = bundled
    cfg = DreamConfig(size=32, iterations=1, steps=2, conv=conv, objective="conv3:1 + logit:2")
    call = dream_call(model, params, cfg, jnp.zeros((1, 32, 32)))
    closed = jax.make_jaxpr(lambda x: carve_batch(call.spec, params, x, call.knobs, call.keys))
    precisions = list(_products(closed(call.images).jaxpr))
    highest = jax.lax.Precision.HIGHEST
    assert precisions and all(
        p is not None and all(q == highest for q in (p if isinstance(p, tuple) else (p,)))
        for p in precisions
    ), set(map(str, precisions))


def test_no_module_imports_jax_private_modules():
    root = Path(__file__).resolve().parents[1] / "jaxdream"
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.startswith("jax._src") for n in names), path.name


def test_public_functions_named_like_their_modules_stay_functions():
    """``jaxdream.dream`` is the function however the modules were imported first."""
    script = (
        "from jaxdream.many import dream_photos; import jaxdream, inspect; "
        "from jaxdream import oip; "
        "print(all(inspect.isfunction(f) for f in (jaxdream.dream, jaxdream.oip, jaxdream.explore,"
        " oip)), sorted(set(dir(jaxdream)) >= set(jaxdream.__all__) for _ in [0]))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.split()[0] == "True", done.stderr


def test_no_bar_when_standard_error_is_not_a_terminal(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "jaxdream",
            "dream",
            "-o",
            str(tmp_path / "d.png"),
            "--size",
            "48",
            "--iterations",
            "2",
            "--steps",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and "|" not in done.stderr and "it/s" not in done.stderr


# ------------------------------------------------------------------------ bad input through the API


def test_extreme_finite_images_dream_to_finite_results(bundled):
    _, params = bundled
    wild = np.linspace(-3e38, 3e38, 40 * 60, dtype=np.float32).reshape(40, 60)
    result = dream(wild, DreamConfig(size=48, iterations=1, steps=2), params=params)
    assert np.all(np.isfinite(result.image))


def test_no_nan_reaches_an_image(tmp_path):
    x = np.ones((4, 4), np.float32)
    x[1, 1] = np.nan
    with pytest.raises(NumericalError):
        to_uint8(x)
    from jaxdream.dreaming import check_finite

    with pytest.raises(NumericalError, match="lower"):
        check_finite(x, DreamConfig())


@pytest.mark.parametrize(
    "call",
    [
        lambda p: dream([[0.1, 0.2], [0.3, 0.4]], params=p),
        lambda p: dream(b"\x89PNG\r\n\x1a\n....", params=p),
        lambda p: dream(np.zeros((4, 4)), DreamConfig(size=(48, 48, 3)), params=p),
        lambda p: dream(np.zeros((4, 4)), DreamConfig(size=48.5), params=p),
        lambda p: dream(np.zeros((4, 4)), DreamConfig(levels=[1]), params=p),
        lambda p: dream(np.zeros((4, 4)), DreamConfig(steps="30"), params=p),
        lambda p: dream(np.zeros((4, 4)), DreamConfig(levels=(Level(1, tiles=(0.5,)),)), params=p),
        lambda p: dream(np.zeros((4, 4)), "article", params=p),
        lambda p: dream_many("photo.jpg", params=p),
        lambda p: save_image("x.png", np.zeros((4, 4), np.float64)),
        lambda p: save_image("x.png", np.zeros((0, 4), np.uint8)),
        lambda p: Display(fact=float("nan")),
    ],
)
def test_the_python_api_raises_its_own_errors(bundled, call):
    _, params = bundled
    with pytest.raises(JaxdreamError):
        call(params)
