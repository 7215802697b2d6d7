import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdream.carve import carve
from jaxdream.config import DreamConfig, Level, parse_level
from jaxdream.dreaming import dream, dream_call, dream_many
from jaxdream.errors import ConfigError, ObjectiveError
from jaxdream.imageops import cut_tiles, place_tiles, standardize
from jaxdream.objectives import channel
from jaxdream.patterns import oip

SMALL = dict(size=64, iterations=2, steps=3, map=1)


def _std(x):
    x = np.asarray(x, np.float32)
    return (x - x.mean()) / max(x.std(), 1 / np.sqrt(x.size))


def _rs(x, shape):
    return np.asarray(jax.image.resize(jnp.asarray(x), shape, "bicubic", antialias=True))


def _region(shape, level, tile):
    n = 2**level
    h, w = shape[0] // n, shape[1] // n
    r, c = divmod(tile, n)
    return slice(r * h, (r + 1) * h), slice(c * w, (c + 1) * w)


def plain_faithful(model, params, img, levels, layer, iterations, steps, epsilon):
    """Steps 1-3 of the article written out tile by tile, with numpy and single-image OIP."""
    img = np.asarray(img, np.float32)
    shape = img.shape

    def run(x, m):
        return np.asarray(
            oip(params, channel(layer, m), x, steps=steps, epsilon=epsilon, model=model).images
        )

    img28 = _std(_rs(img, (28, 28)))
    corr = {0: img - _std(_rs(img28, shape))}
    for level, tiles, _ in levels:
        for t in tiles if level else ():
            q = img[_region(shape, level, t)]
            corr[level, t] = q - _std(_rs(_rs(q, (28, 28)), q.shape))
    full, cur = img, img28
    for _ in range(iterations):
        for level, tiles, maps in levels:
            if level == 0:
                full = _std(_rs(run(cur, maps[0]), shape) + corr[0])
                continue
            base, full = full, full.copy()
            for t, m in zip(tiles, maps, strict=True):
                q = base[_region(shape, level, t)]
                full[_region(shape, level, t)] = (
                    _rs(run(_rs(q, (28, 28)), m), q.shape) + corr[level, t]
                )
            full = _std(full)
        cur = _rs(full, (28, 28))
    return full


def test_cut_and_place_are_inverse():
    x = jnp.arange(8 * 12, dtype=jnp.float32).reshape(8, 12)
    tiles = cut_tiles(x, 1, (0, 1, 2, 3))
    np.testing.assert_array_equal(tiles[3], x[4:, 6:])  # lower-right quadrant, row-major
    np.testing.assert_array_equal(place_tiles(tiles, (8, 12), 1, (0, 1, 2, 3)), x)
    only = place_tiles(tiles[1:2], (8, 12), 1, (1,))
    np.testing.assert_array_equal(only[:4, 6:], x[:4, 6:])
    assert float(jnp.abs(only).sum()) == float(jnp.abs(x[:4, 6:]).sum())


@pytest.mark.parametrize(
    "levels",
    [
        (Level(0),),
        (Level(0), Level(1)),
        (Level(0), Level(1), Level(2, weight=0.5)),
        (Level(1, tiles=(0, 3)), Level(2, tiles=(5,))),
    ],
    ids=["full", "full+quadrants", "levels0-2", "some-tiles"],
)
@pytest.mark.parametrize("shift", [False, True])
def test_zero_steps_return_the_standardized_input(bundled, smooth_image, levels, shift):
    model, params = bundled
    cfg = DreamConfig(size=64, iterations=3, steps=0, levels=levels, shift_tiles=shift)
    result = dream(smooth_image, cfg, model=model, params=params)
    np.testing.assert_allclose(result.image, result.gray, atol=2e-5)


def _faithful_cases():
    return [
        ((Level(0), Level(1, tiles=(3,))), [(0, (0,), (56,)), (1, (3,), (56,))]),
        (
            (Level(0), Level(1, maps=(5, 6, 7, 8))),
            [(0, (0,), (56,)), (1, (0, 1, 2, 3), (5, 6, 7, 8))],
        ),
        (
            (Level(0), Level(2, tiles=(0, 10, 15), maps=9)),
            [(0, (0,), (56,)), (2, (0, 10, 15), (9, 9, 9))],
        ),
    ]


@pytest.mark.parametrize("steps", [0, 3])
@pytest.mark.parametrize("case", range(3))
def test_faithful_equals_plain_step_by_step(bundled, smooth_image, steps, case):
    model, params = bundled
    levels, plain_levels = _faithful_cases()[case]
    cfg = DreamConfig(size=64, iterations=2, steps=steps, levels=levels, schedule="faithful")
    result = dream(smooth_image, cfg, model=model, params=params)
    want = plain_faithful(model, params, result.gray, plain_levels, "conv3", 2, steps, 0.01)
    np.testing.assert_allclose(result.image, want, atol=2e-4)


def test_faithful_zero_steps_keep_the_articles_mismatch(bundled, smooth_image):
    """The addendum in numbers: with no OIP at all the faithful schedule still moves pixels
    (corrections against standardized upscales, added to unstandardized ones); the default
    schedule standardizes each tile for the CNN and undoes it, so it does not."""
    _, params = bundled
    article = DreamConfig(size=128, iterations=1, steps=0)
    faithful = dream(smooth_image, article.replace(schedule="faithful"), params=params)
    default = dream(smooth_image, article, params=params)
    moved = np.abs(faithful.image - faithful.gray)
    quadrant = moved[64:, 64:].mean()
    elsewhere = moved[:64].mean()
    assert quadrant > 0.05 and elsewhere > 0.01, (quadrant, elsewhere)
    assert quadrant > elsewhere
    assert np.abs(default.image - default.gray).max() < 1e-5


def _count_primitive(jaxpr, name):
    n = 0
    for eqn in jaxpr.eqns:
        n += eqn.primitive.name == name
        for sub in jax.core.jaxprs_in_params(eqn.params):
            n += _count_primitive(sub, name)
    return n


@pytest.mark.parametrize(
    "schedule, levels, whiles",
    [
        ("batched", (Level(0), Level(1), Level(2)), 1),
        ("faithful", (Level(0), Level(1), Level(2)), 3),
        ("faithful", (Level(0), Level(1, tiles=(3,))), 2),
    ],
)
def test_one_oip_call_per_iteration_in_the_batched_schedule(tiny, schedule, levels, whiles):
    model, params = tiny
    cfg = DreamConfig(size=32, iterations=4, steps=3, levels=levels, schedule=schedule, map=1)
    fn = lambda x: carve(cfg.spec(model, (32, 32)), params, x, cfg.knobs(), jax.random.key(0))
    jaxpr = jax.make_jaxpr(fn)(jnp.zeros((32, 32))).jaxpr
    assert _count_primitive(jaxpr, "scan") == 1  # the iterations
    assert _count_primitive(jaxpr, "while") == whiles  # the OIP loops, one per batched call


def test_a_map_per_tile_differs_from_one_map(bundled, smooth_image):
    _, params = bundled
    base = DreamConfig(size=64, iterations=1, steps=5, levels=(Level(0), Level(1)))
    one = dream(smooth_image, base, params=params)
    per_tile = dream(
        smooth_image, base.replace(levels=(Level(0), parse_level("1/56,3,7,12"))), params=params
    )
    diff = np.abs(per_tile.image - one.image)
    # Tile 3 took map 12 instead of 56; tile 0 took map 56 in both runs and only shifts with
    # the global standardization.
    h, w = diff.shape
    assert diff[h // 2 :, w // 2 :].mean() > 3 * diff[: h // 2, : w // 2].mean() > 0
    assert not np.allclose(per_tile.image, one.image)


def test_same_seed_same_bytes_and_seeds_matter_with_shift(bundled, smooth_image):
    _, params = bundled
    cfg = DreamConfig(
        size=64, iterations=2, steps=3, levels=(Level(0), Level(1)), shift_tiles=True, seed=3
    )
    a = dream(smooth_image, cfg, params=params).to_uint8()
    b = dream(smooth_image, cfg, params=params).to_uint8()
    assert a.tobytes() == b.tobytes()
    c = dream(smooth_image, cfg.replace(seed=4), params=params).to_uint8()
    assert a.tobytes() != c.tobytes()


@pytest.mark.parametrize(
    "photo",
    [
        np.random.default_rng(0).random((40, 90)),  # wide
        np.random.default_rng(1).random((90, 40, 3)),  # tall RGB
        np.random.default_rng(2).integers(0, 255, (50, 50, 4), dtype=np.uint8),  # RGBA
        np.random.default_rng(3).random((5, 3)),  # tiny
        np.full((30, 30), 0.5, np.float32),
    ],  # flat
    ids=["wide", "tall-rgb", "rgba", "tiny", "flat"],
)
def test_any_image_gives_finite_output(bundled, photo):
    _, params = bundled
    cfg = DreamConfig(size=48, iterations=1, steps=2, levels=(Level(0), Level(1)))
    result = dream(photo, cfg, params=params)
    h, w = photo.shape[:2]
    assert result.image.shape[0] % 2 == 0 and result.image.shape[1] % 2 == 0
    assert (result.image.shape[0] >= result.image.shape[1]) == (h >= w)
    assert np.all(np.isfinite(result.image))
    assert result.to_uint8(color=True).shape == (*result.image.shape, 3)


def test_working_shape_rules():
    cfg = DreamConfig(levels=(Level(0), Level(2)))
    assert cfg.working_shape((512, 512)) == (560, 560)
    assert cfg.working_shape((300, 451)) == (372, 560)  # aspect kept, multiple of 4
    assert cfg.replace(size=(200, 100)).working_shape((1, 1)) == (200, 100)
    with pytest.raises(ConfigError, match="divisible"):
        cfg.replace(size=(202, 100)).working_shape((1, 1))
    for huge in (56000, (8200, 100)):
        with pytest.raises(ConfigError, match="too large"):
            cfg.replace(size=huge).working_shape((10, 10))


@pytest.mark.parametrize(
    "changes, error, pattern",
    [
        (dict(layer="conv9"), ObjectiveError, "valid layers"),
        (dict(map=64), ObjectiveError, "out of range"),
        (dict(levels=(Level(1, tiles=(4,)),)), ConfigError, "tiles 0..3"),
        (dict(levels=(Level(1, maps=(1, 2)),)), ConfigError, "2 maps for 4 tiles"),
        (dict(levels=(Level(0), Level(0))), ConfigError, "once"),
        (dict(schedule="faithful", levels=(Level(1), Level(0))), ConfigError, "ascending"),
        (dict(schedule="faithful", shift_tiles=True), ConfigError, "shift_tiles"),
        (dict(schedule="other"), ConfigError, "schedule"),
        (dict(iterations=0), ConfigError, "iterations"),
        (dict(epsilon=float("nan")), ConfigError, "epsilon"),
        (dict(levels=(Level(0, weight=float("inf")),)), ConfigError, "weights"),
    ],
)
def test_bad_configs_are_refused(bundled, changes, error, pattern):
    model, _ = bundled
    with pytest.raises(error, match=pattern):
        DreamConfig(**changes).check(model)


def test_dreaming_many_equals_dreaming_each(bundled, smooth_image):
    _, params = bundled
    cfg = DreamConfig(size=64, iterations=1, steps=3)
    photos = [smooth_image, smooth_image[::-1].copy()]
    many = dream_many(photos, cfg, params=params)
    for i, photo in enumerate(photos):
        alone = dream(photo, cfg, params=params)
        np.testing.assert_allclose(many[i].image, alone.image, atol=1e-4)


def test_frames_are_the_iterations(bundled, smooth_image):
    _, params = bundled
    cfg = DreamConfig(**SMALL)
    result = dream(smooth_image, cfg, params=params, return_frames=True)
    assert result.frames.shape == (2, *result.image.shape)
    np.testing.assert_array_equal(result.frames[-1], result.image)
    assert np.abs(standardize(result.frames[0]) - result.frames[0]).max() < 1e-4


@pytest.mark.parametrize(
    "shapes",
    [((560, 560), (28, 28)), ((28, 28), (560, 280)), ((37, 23), (28, 28)), ((5, 3), (28, 28))],
)
def test_resize_matches_jax_image_resize(shapes):
    from jaxdream.imageops import resize

    src, dst = shapes
    x = jax.random.normal(jax.random.key(0), (2, *src))
    want = jax.image.resize(x, (2, *dst), "bicubic", antialias=True)
    np.testing.assert_allclose(resize(x, dst), want, atol=2e-5)
    jitted = jax.jit(lambda t: resize(t, dst))(x)
    np.testing.assert_allclose(jitted, want, atol=2e-5)


@pytest.mark.parametrize("schedule", ["batched", "faithful"])
def test_one_map_path_gives_the_general_paths_dream(bundled, smooth_image, schedule):
    from jaxdream.objectives import Channel

    model, params = bundled
    config = DreamConfig(**SMALL, levels=(Level(0), Level(1, maps=(3, 4, 5, 6))), schedule=schedule)
    image = jnp.asarray(_std(smooth_image[:64, :64]))[None]
    call = dream_call(model, params, config, image)
    assert call.knobs.objective.may_be_whole is False  # no map is -1: one map computed alone
    fast = call()[0]
    general_objective = Channel("conv3", call.knobs.objective.map, may_be_whole=True)
    general = call._replace(knobs=call.knobs._replace(objective=general_objective))()[0]
    np.testing.assert_allclose(fast, general, rtol=1e-4, atol=1e-4)
    whole = config.replace(levels=(Level(0, maps=-1), Level(1)))
    assert dream_call(model, params, whole, image).knobs.objective.may_be_whole is True
