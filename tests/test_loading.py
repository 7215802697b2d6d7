"""A user's own Flax network (``jaxdream.loading``, ``--network``): loaded from a file or a
module, its weights saved and read back, its layers listed; every bad network, name, shape or
weights file refused with the project's error in Python, and on the command line with one line
and exit code 2 before any program is compiled, nothing written."""

from __future__ import annotations

import contextlib
import functools
import json

import jax
import numpy as np
import pytest
from flax import nnx

from jaxdream.cli import main
from jaxdream.cli._core import run_settings
from jaxdream.errors import CheckpointError, ConfigError
from jaxdream.loading import (
    check_input_shape,
    describe_layers,
    infer_input_shape,
    load,
    load_network,
    load_weights,
    save_weights,
    weight_shapes,
)
from tests.helpers import REPO, TINY_DREAM_FLAGS, refused

NETWORKS = REPO / "tests" / "networks"
LINEN = f"{NETWORKS / 'linen_cnn.py'}:NET"
NNX = f"{NETWORKS / 'nnx_cnn.py'}:make"
BROKEN = NETWORKS / "broken.py"

# Each bad network or name, what its one line says, and the error it raises in Python.
BAD_NETWORKS = [
    (f"{BROKEN}:raises", "raises() raised ValueError: the factory could not build"),
    (f"{BROKEN}:not_a_network", "not_a_network is of type dict, not a Flax"),
    (f"{BROKEN}:NUMBER", "NUMBER is of type int, not a Flax"),
    (f"{NETWORKS / 'missing.py'}:NET", "missing.py does not exist"),
    ("no_such_package.module:NET", "no module named 'no_such_package'"),
    (f"{NETWORKS / 'linen_cnn.py'}:MISSING", "has no 'MISSING' (it has: NET, SmallCNN, make"),
    (f"{NETWORKS / 'import_fails.py'}:NET", "failed: RuntimeError: this file cannot be imported"),
    ("linen_cnn", "--network takes FILE.py:NAME or package.module:NAME"),
    (f"{BROKEN}:DENSE_ONLY", "DenseOnly has no convolution"),
    (f"{BROKEN}:WORDS", "Words returns str, not arrays"),
    (f"{BROKEN}:four_channels", "takes 4-channel inputs"),
]
# Input shapes refused for the good Linen network.
BAD_SHAPES = [
    ((28, 28, 2), "takes 2-channel inputs"),
    ((4, 4, 1), "does not run on an input of shape (4, 4, 1) (too small"),
    ((0, 28, 1), "input shape must be three whole numbers"),
]


@contextlib.contextmanager
def no_compilation():
    """Fail if XLA compiles any program within the block (a refusal comes before any)."""
    compiled = []
    listening = [True]

    def listen(event: str, seconds: float, **kwargs) -> None:
        if listening[0] and event == "/jax/core/compile/backend_compile_duration":
            compiled.append(event)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        yield
    finally:
        listening[0] = False
    assert not compiled, f"{len(compiled)} programs compiled before the refusal"


@functools.cache
def fresh_linen_params() -> dict:
    """Random weights of the Linen test network's shapes (drawn by NumPy: nothing compiled)."""
    rng = np.random.default_rng(0)
    shapes = weight_shapes(load_network(LINEN), (28, 28, 1))
    return jax.tree.map(lambda s: rng.normal(0, 0.3, s.shape).astype(np.float32), shapes)


def linen_weights(tmp_path, name="w.msgpack", **change):
    """The Linen test network's fresh weights saved with ``save_weights``, changed by
    ``change`` (``{"Conv_0/kernel": value}``): ``(path, params)``."""
    params = jax.tree.map(np.array, fresh_linen_params())
    for key, value in change.items():
        layer, leaf = key.split("/")
        params[layer][leaf] = value
    path = tmp_path / name
    save_weights(path, params)
    return path, params


# --------------------------------------------------------------------------- loading


def test_a_linen_network_loads_from_an_instance_a_factory_and_a_module():
    import flax.linen as nn

    for spec in (LINEN, f"{NETWORKS / 'linen_cnn.py'}:make", "tests.networks.linen_cnn:make"):
        net = load_network(spec)
        assert isinstance(net, nn.Module) and type(net).__name__ == "SmallCNN"
    assert infer_input_shape(load_network(LINEN)) == (28, 28, 1)


def test_an_nnx_network_loads_with_its_own_state():
    module, state, shape = load(NNX)
    assert isinstance(module, nnx.Module) and isinstance(state, nnx.State)
    assert shape == (28, 28, 1)


def test_the_layers_are_named_by_path_in_call_order_with_sown_values():
    layers = describe_layers(load_network(LINEN))
    assert layers == {
        "Conv_0": (26, 26, 4),
        "Conv_1": (11, 11, 8),
        "Dense_0": (10,),
        "features": (11, 11, 8),
        "output": (10,),
    }
    module, state, _ = load(NNX)
    assert describe_layers(module, state) == {
        "conv1": (26, 26, 4),
        "conv2": (11, 11, 8),
        "head": (10,),
        "output": (10,),
    }


@pytest.mark.parametrize("spec, says", BAD_NETWORKS)
def test_a_bad_network_is_refused_in_python(spec, says):
    with no_compilation(), pytest.raises(ConfigError) as e:
        load(spec)
    assert says in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("shape, says", BAD_SHAPES)
def test_a_bad_input_shape_is_refused_in_python(shape, says):
    with no_compilation(), pytest.raises(ConfigError, match=None) as e:
        check_input_shape(load_network(LINEN), None, shape)
    assert says in str(e.value)


# --------------------------------------------------------------------------- weights


def test_linen_weights_saved_and_loaded_back_are_equal(tmp_path):
    path, params = linen_weights(tmp_path)
    back = load_weights(load_network(LINEN), path)
    assert jax.tree.structure(back) == jax.tree.structure(params)
    assert all(jax.tree.leaves(jax.tree.map(np.array_equal, back, params)))


def test_nnx_weights_saved_and_loaded_back_are_equal(tmp_path):
    _, state, _ = load(NNX)
    state = jax.tree.map(lambda a: a + 1, state)  # not the weights the factory makes
    save_weights(tmp_path / "n.msgpack", state)
    back = load_weights(load_network(NNX), tmp_path / "n.msgpack")
    assert all(jax.tree.leaves(jax.tree.map(np.array_equal, back, state)))


def bad_weights(tmp_path) -> list[tuple[str, str]]:
    """Weights files the Linen test network refuses, each with what its line says."""
    wide, _ = linen_weights(tmp_path, "wide.msgpack", **{"Conv_0/kernel": np.zeros((3, 3, 1, 5))})
    nan, _ = linen_weights(
        tmp_path, "nan.msgpack", **{"Conv_1/bias": np.full(8, np.nan, np.float32)}
    )
    junk = tmp_path / "junk.msgpack"
    junk.write_bytes(b"\xc1 this is not msgpack")
    return [
        (str(wide), "Conv_0/kernel has shape (3, 3, 1, 5), the network's is (3, 3, 1, 4)"),
        (str(nan), "Conv_1/bias holds NaN or infinite values"),
        (str(junk), "not a Flax msgpack file"),
        (str(tmp_path / "absent.msgpack"), "absent.msgpack does not exist"),
    ]


def test_bad_weights_are_refused_in_python(tmp_path):
    net = load_network(LINEN)
    for path, says in bad_weights(tmp_path):
        with no_compilation(), pytest.raises(CheckpointError) as e:
            load_weights(net, path)
        assert says in str(e.value), (path, str(e.value))


# --------------------------------------------------------------------------- command line


def dream_argv(tmp_path, photo, *flags) -> list[str]:
    return ["dream", str(photo), "-o", str(tmp_path / "o.png"), *TINY_DREAM_FLAGS, *flags]


@pytest.mark.parametrize("spec, says", BAD_NETWORKS)
def test_a_bad_network_is_refused_on_the_command_line(tmp_path, photo, capsys, spec, says):
    out = tmp_path / "out"
    out.mkdir()
    with no_compilation():
        line = refused(capsys, dream_argv(out, photo, "--network", spec), out)
    assert says in line


def test_bad_shapes_and_weights_are_refused_on_the_command_line(tmp_path, photo, capsys):
    out = tmp_path / "out"
    out.mkdir()
    cases = [(["--input-shape", *map(str, s)], says) for s, says in BAD_SHAPES]
    cases += [(["--weights", path], says) for path, says in bad_weights(tmp_path)]
    for flags, says in cases:
        with no_compilation():
            line = refused(capsys, dream_argv(out, photo, "--network", LINEN, *flags), out)
        assert says in line, (flags, line)
    with pytest.raises(SystemExit) as e:  # the parser's own refusal
        main(dream_argv(out, photo, "--network", LINEN, "--input-shape", "28", "28"))
    assert e.value.code == 2 and "expected 3 arguments" in capsys.readouterr().err
    line = refused(capsys, dream_argv(out, photo, "--input-shape", "28", "28", "1"), out)
    assert "--input-shape is the input shape of a --network" in line


@pytest.mark.parametrize("command", ["explore", "oip", "zoom", "info"])
def test_every_command_with_the_flag_refuses_a_bad_network(tmp_path, photo, capsys, command):
    out = tmp_path / "out"
    out.mkdir()
    output = {"explore": "s.png", "oip": "p.png", "zoom": "z.gif"}.get(command)
    argv = [command, *([str(photo)] if command in ("explore", "zoom") else [])]
    argv += ["-o", str(out / output)] if output else []
    with no_compilation():
        line = refused(capsys, [*argv, "--network", f"{BROKEN}:WORDS"], out)
    assert "Words returns str, not arrays" in line


@pytest.mark.parametrize("command", ["dream", "explore", "oip"])
def test_a_layer_the_network_lacks_is_refused(tmp_path, photo, capsys, command):
    out = tmp_path / "out"
    out.mkdir()
    argv = [command, *([str(photo)] if command != "oip" else []), "-o", str(out / "o.png")]
    weights, _ = linen_weights(tmp_path)
    # (conv1..conv3 are names every network reads: the presets' layers at its depths)
    argv += ["--network", LINEN, "--weights", str(weights), "--layer", "Conv_9"]
    with no_compilation():
        line = refused(capsys, [*argv, *(["--map", "3"] if command != "explore" else [])], out)
    assert "Conv_9" in line and "Conv_1" in line, line


def test_info_lists_a_networks_layers(capsys):
    assert main(["info", "--network", LINEN]) == 0
    text = capsys.readouterr().out
    for line in ("input    28x28x1, 10,026 parameters", "Conv_0    26x26x4", "output    10"):
        assert line in text, text
    assert main(["info", "--network", NNX, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layers"]["conv2"] == [11, 11, 8] and info["input_shape"] == [28, 28, 1]


def test_info_reads_the_weights_given(tmp_path, capsys):
    path, _ = linen_weights(tmp_path)
    assert main(["info", "--network", LINEN, "--weights", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["weights"] == str(path)


def test_a_renders_settings_leave_the_unset_network_flags_out():
    """A zoom or video interrupted before ``--network`` existed resumes: its settings hold
    no ``network`` or ``input_shape`` while those are unset."""
    from jaxdream.cli import parse_args

    args = parse_args(["zoom", "-o", "z.gif"])
    assert {"network", "input_shape"}.isdisjoint(run_settings(args, ()))
    args = parse_args(["zoom", "-o", "z.gif", "--network", LINEN])
    assert run_settings(args, ())["network"] == LINEN


@pytest.mark.slow
def test_a_dream_with_a_users_network(tmp_path, photo, capsys):
    path, _ = linen_weights(tmp_path)
    out = tmp_path / "d.png"
    argv = ["dream", str(photo), "-o", str(out), *TINY_DREAM_FLAGS, "--no-color"]
    argv += ["--network", LINEN, "--weights", str(path), "--layer", "Conv_1", "--map", "3"]
    assert main(argv) == 0
    assert out.is_file()


@pytest.mark.slow
def test_an_oip_with_a_users_network(tmp_path, capsys):
    """An NNX network with its own state (no --weights)."""
    out = tmp_path / "p.png"
    argv = ["oip", "-o", str(out), "--steps", "2", "--network", NNX, "--layer", "conv2"]
    assert main([*argv, "--map", "3"]) == 0
    assert out.is_file()


# --------------------------------------------------------------------------- preprocessing

PREPROCESS = NETWORKS / "preprocess.py"
BAD_PREPROCESSING = [
    (["--preprocess", f"{PREPROCESS}:NOT_A_FUNCTION"], "is of type float, not a function"),
    (["--preprocess", f"{PREPROCESS}:missing"], "has no 'missing' (it has: NOT_A_FUNCTION"),
    (["--preprocess", f"{PREPROCESS}:flat"], "preprocess gives (784,) for a tile of (28, 28, 1)"),
    (["--preprocess", "pixels"], "--preprocess takes FILE.py:NAME or package.module:NAME"),
    (["--input-norm", "0.1", "0.2", "0.3"], "--input-norm takes the means then the stds"),
    (["--input-norm", "0.1", "0"], "std and pixel_std must be above 0"),
    (["--input-norm", "nan", "1"], "mean must be finite numbers"),
    (["--input-norm", "0.1", "0.3", "--preprocess", f"{PREPROCESS}:pixels"], "give one"),
]


def test_a_preprocessing_loads_from_a_file_and_a_module():
    from jaxdream.loading import load_preprocess

    for spec in (f"{PREPROCESS}:pixels", "tests.networks.preprocess:pixels"):
        assert load_preprocess(spec).__name__ == "pixels"


@pytest.mark.parametrize("flags, says", BAD_PREPROCESSING)
def test_a_bad_preprocessing_is_refused_on_the_command_line(tmp_path, photo, capsys, flags, says):
    out = tmp_path / "out"
    out.mkdir()
    with no_compilation():
        line = refused(capsys, dream_argv(out, photo, "--network", LINEN, *flags), out)
    assert says in line, line


def test_a_preprocessing_of_infinite_values_or_without_a_network_is_refused(
    tmp_path, photo, capsys
):
    out = tmp_path / "out"
    out.mkdir()
    flags = ["--network", LINEN, "--preprocess", f"{PREPROCESS}:infinite"]
    assert "NaN or infinite" in refused(capsys, dream_argv(out, photo, *flags), out)
    for flags in (["--input-norm", "0.1", "0.3"], ["--preprocess", f"{PREPROCESS}:pixels"]):
        line = refused(capsys, dream_argv(out, photo, *flags), out)
        assert "own preprocessing of a --network: give both" in line


@pytest.mark.slow
def test_a_dream_with_a_users_network_and_its_preprocessing(tmp_path, photo, capsys):
    path, _ = linen_weights(tmp_path)
    argv = [*TINY_DREAM_FLAGS, "--no-color", "--layer", "Conv_1", "--map", "3"]
    argv += ["--network", LINEN, "--weights", str(path)]
    made = {}
    for name, flags in {
        "plain": [],
        "norm": ["--input-norm", "0.1307", "0.3081"],
        "file": ["--preprocess", f"{PREPROCESS}:pixels"],
    }.items():
        out = tmp_path / f"{name}.png"
        assert main(["dream", str(photo), "-o", str(out), *argv, *flags]) == 0
        made[name] = out.read_bytes()
    assert len(set(made.values())) == 3  # the network sees each preprocessing


def test_the_layers_listed_are_the_names_the_engine_reads():
    """One naming of layers: ``describe_layers`` (``info``, without weights) and the engine's
    network (``as_network``) name a module called twice, sown values and the output alike."""
    import flax.linen as nn
    import jax.numpy as jnp

    from jaxdream.network import as_network

    class Twice(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(2, (3, 3))(x))
            conv = nn.Conv(2, (3, 3))
            x = conv(conv(x))
            self.sow("intermediates", "kept", x)
            return nn.Dense(3)(x.reshape(x.shape[0], -1))

    module = Twice()
    params = module.init(jax.random.key(0), jnp.zeros((1, 16, 16, 1)))["params"]
    listed = describe_layers(module, params)
    assert listed == as_network(module, params)[0].activation_shapes()
    assert list(listed) == ["Conv_0", "Conv_1", "Conv_1_call1", "Dense_0", "kept", "output"]
    for module, state in (load(NNX)[:2], (load_network(LINEN), fresh_linen_params())):
        assert describe_layers(module, state) == as_network(module, state)[0].activation_shapes()
