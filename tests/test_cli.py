import functools
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxdream import imageio
from jaxdream.checkpoint import save_checkpoint
from jaxdream.cli import main
from tests.helpers import SMALL_DREAM_FLAGS


def test_dream_end_to_end(tmp_path, photo, capsys):
    out, gif, fig = tmp_path / "d.png", tmp_path / "d.gif", tmp_path / "f.png"
    code = main(
        [
            "dream",
            str(photo),
            "-o",
            str(out),
            "--gif",
            str(gif),
            "--figure",
            str(fig),
            "--levels",
            "0",
            "1/56,3,7,12",
            "--color",
            *SMALL_DREAM_FLAGS,
        ]
    )
    assert code == 0
    with Image.open(out) as img:
        assert img.mode == "RGB" and img.size == (60, 40)  # the photo's size
    with Image.open(gif) as img:
        assert img.n_frames == 2  # the input and one iteration
    with Image.open(fig) as img:
        assert img.width > img.height
    assert "wrote" in capsys.readouterr().out


def test_dream_with_no_input_uses_the_sample(tmp_path):
    out = tmp_path / "sample.png"
    assert main(["dream", "-o", str(out), *SMALL_DREAM_FLAGS]) == 0
    with Image.open(out) as img:
        assert img.size == (512, 512) and img.mode == "RGB"  # the vivid preset: in colour
    assert main(["dream", "-o", str(out), "--output-size", "working", *SMALL_DREAM_FLAGS]) == 0
    with Image.open(out) as img:
        assert img.size == (48, 48)
    assert main(["dream", "-o", str(out), "--preset", "article", *SMALL_DREAM_FLAGS]) == 0
    with Image.open(out) as img:
        assert img.mode == "L"


def test_same_seed_same_file(tmp_path, photo):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    for out in (a, b):
        assert (
            main(
                [
                    "dream",
                    str(photo),
                    "-o",
                    str(out),
                    "--shift-tiles",
                    "--levels",
                    "0",
                    "1",
                    "--seed",
                    "1",
                    *SMALL_DREAM_FLAGS,
                ]
            )
            == 0
        )
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize(
    "flags",
    [
        ["--objective", "0.7*conv3:56 + 0.3*conv2:12"],
        ["--objective", "logit:9"],
        ["--objective", "conv3:56 - 0.1*logit:3"],
        ["--levels", "0", "1:0,3=logit:3;conv2:5 - 0.5*conv3:-1"],
        ["--levels", "0", "1", "--overlap", "0.25", "--conv", "xla", "--precision", "default"],
    ],
    ids=["sum", "logit", "difference", "per-tile", "overlap-xla"],
)
def test_dream_objectives_and_layouts_from_the_command_line(tmp_path, photo, capsys, flags):
    out = tmp_path / "d.png"
    assert main(["dream", str(photo), "-o", str(out), *SMALL_DREAM_FLAGS, *flags]) == 0
    with Image.open(out) as img:
        pixels = np.asarray(img)
    assert pixels.std() > 0  # a picture, not a flat image
    said = capsys.readouterr().out
    if flags[0] == "--objective":
        assert "logit" in said or "channel" in said  # the objective is named


def _bad_cases(tmp_path, photo):
    trunc = tmp_path / "trunc.png"
    trunc.write_bytes(photo.read_bytes()[:200])
    text = tmp_path / "text.jpg"
    text.write_text("not an image")
    out = str(tmp_path / "o.png")
    return {
        "missing": ["dream", str(tmp_path / "nope.png"), "-o", out],
        "truncated": ["dream", str(trunc), "-o", out],
        "not an image": ["dream", str(text), "-o", out],
        "input is a directory": ["dream", str(tmp_path), "-o", out],
        "output folder missing": ["dream", str(photo), "-o", str(tmp_path / "no" / "o.png")],
        "output is a directory": ["dream", str(photo), "-o", str(tmp_path)],
        "unknown format": ["dream", str(photo), "-o", str(tmp_path / "o.xyz")],
        "unknown layer": ["dream", str(photo), "-o", out, "--layer", "conv7"],
        "map out of range": ["dream", str(photo), "-o", out, "--map", "64"],
        "bad level": ["dream", str(photo), "-o", out, "--levels", "1:9"],
        "bad level text": ["dream", str(photo), "-o", out, "--levels", "one"],
        "bad size": ["dream", str(photo), "-o", out, "--size", "1", "2", "3"],
        "huge size": ["dream", str(photo), "-o", out, "--size", "56000"],
        "weights missing": ["dream", str(photo), "-o", out, "--weights", str(tmp_path / "w")],
        "weights corrupt": ["dream", str(photo), "-o", out, "--weights", str(text)],
        "oip bad map": ["oip", "--map", "x", "-o", out],
        "oip unknown layer": ["oip", "--layer", "conv7", "--map", "all", "-o", out],
        "oip bad objective": ["oip", "--objective", "conv3:1:2", "-o", out],
        "output is the input": ["dream", str(photo), "-o", str(photo)],
        "output is the input by another name": [
            "dream",
            str(photo),
            "-o",
            str(tmp_path / "." / photo.name),
        ],
        "figure over the output": ["dream", str(photo), "-o", out, "--figure", out],
        "train output folder missing": ["train", "-o", str(tmp_path / "no" / "w.msgpack")],
        "train zero epochs": ["train", "-o", str(tmp_path / "w.msgpack"), "--epochs", "0"],
        "train warm-up too long": ["train", "-o", str(tmp_path / "w"), "--warmup-epochs", "20"],
        "dream bad objective": ["dream", str(photo), "-o", out, "--objective", "conv3:56 -"],
        "dream objective out of range": ["dream", str(photo), "-o", out, "--objective", "logit:10"],
        "dream bad tile objective": ["dream", str(photo), "-o", out, "--levels", "1=conv9:1"],
        "dream too many tile objectives": [
            "dream",
            str(photo),
            "-o",
            out,
            "--levels",
            "1:3=logit:1;logit:2",
        ],
        "dream overlap too large": ["dream", str(photo), "-o", out, "--overlap", "1.5"],
        "dream overlap with faithful": [
            "dream",
            str(photo),
            "-o",
            out,
            "--overlap",
            "0.25",
            "--schedule",
            "faithful",
        ],
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "truncated",
        "not an image",
        "input is a directory",
        "output folder missing",
        "output is a directory",
        "unknown format",
        "unknown layer",
        "map out of range",
        "bad level",
        "bad level text",
        "bad size",
        "huge size",
        "weights missing",
        "weights corrupt",
        "oip bad map",
        "oip unknown layer",
        "oip bad objective",
        "output is the input",
        "output is the input by another name",
        "figure over the output",
        "train output folder missing",
        "train zero epochs",
        "train warm-up too long",
        "dream bad objective",
        "dream objective out of range",
        "dream bad tile objective",
        "dream too many tile objectives",
        "dream overlap too large",
        "dream overlap with faithful",
    ],
)
def test_bad_input_gives_one_line_and_code_2(tmp_path, photo, capsys, case):
    argv = _bad_cases(tmp_path, photo)[case]
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert main([*argv, *(["-q"] if argv[0] == "dream" else [])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("jaxdream: error: "), err
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert after == before  # nothing written, nothing changed


def test_decompression_bomb(tmp_path, photo, capsys, monkeypatch):
    monkeypatch.setattr(imageio, "MAX_PIXELS", 1000)
    assert main(["dream", str(photo), "-o", str(tmp_path / "o.png"), "-q"]) == 2
    assert "too large" in capsys.readouterr().err


def test_mismatched_checkpoint(tmp_path, photo, capsys, tiny):
    model, params = tiny
    weights = tmp_path / "w.msgpack"
    save_checkpoint(weights, model, params)
    # A tiny CNN's conv3 has 8 maps: map 56 is refused with the valid range.
    assert (
        main(
            [
                "dream",
                str(photo),
                "-o",
                str(tmp_path / "o.png"),
                "--weights",
                str(weights),
                "--map",
                "56",
                "-q",
            ]
        )
        == 2
    )
    assert "valid 0..7" in capsys.readouterr().err


def test_oip_one_map_and_all_maps(tmp_path, capsys):
    one, grid = tmp_path / "one.png", tmp_path / "grid.png"
    assert main(["oip", "--map", "5", "--steps", "3", "-o", str(one), "--seed", "2"]) == 0
    with Image.open(one) as img:
        assert img.size == (224, 224)
    assert main(["oip", "--layer", "conv1", "--map", "all", "--steps", "3", "-o", str(grid)]) == 0
    assert "32 maps of conv1" in capsys.readouterr().out
    assert (
        main(["oip", "--objective", "logit:7 + 0.5*conv3:1", "--steps", "2", "-o", str(one)]) == 0
    )


def test_oip_reports_dead_maps(tmp_path, capsys):
    # A flat start gives every post-ReLU map of conv3 the same tiny input; some stay at zero.
    flat = tmp_path / "flat.png"
    Image.fromarray(np.full((28, 28), 128, np.uint8)).save(flat)
    assert (
        main(
            [
                "oip",
                "--map",
                "all",
                "--start",
                str(flat),
                "--steps",
                "2",
                "-o",
                str(tmp_path / "g.png"),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "dead start" in err
    # One dead map alone: the warning names it (not its place in a batch of one).
    dead = [int(m) for m in re.search(r"maps \(\[([\d, ]+)\]\)", err).group(1).split(",")]
    out = str(tmp_path / "one.png")
    argv = ["oip", "--map", str(dead[-1]), "--start", str(flat), "--steps", "2", "-o", out]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert f"warning: channel(conv3, {dead[-1]}) stayed at loss 0" in err


def test_info(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layers"]["conv3"] == [3, 3, 64] and info["test_accuracy"] >= 0.992
    assert main(["info"]) == 0
    summary = capsys.readouterr().out.splitlines()
    assert len(summary) <= 8 and "99.43% MNIST test accuracy" in summary[1]
    assert "conv3 3x3x64" in summary[2]


def test_train_without_data_says_what_to_do(tmp_path, capsys):
    code = main(["train", "--data-dir", str(tmp_path), "-o", str(tmp_path / "w.msgpack")])
    assert code == 2
    assert "TFDS_DATA_DIR" in capsys.readouterr().err
    assert not (tmp_path / "w.msgpack").exists()


def test_train_on_a_slice_of_real_mnist(tmp_path, mnist_dir, capsys):
    out = tmp_path / "w.msgpack"
    argv = [
        "train",
        "--data-dir",
        mnist_dir,
        "--train-split",
        "train[:512]",
        "--test-split",
        "test[:256]",
        "--epochs",
        "1",
        "--widths",
        "4",
        "4",
        "4",
        "--hidden",
        "8",
        "-q",
        "-o",
        str(out),
    ]
    assert main(argv) == 0
    assert out.exists() and out.with_suffix(".md").exists()
    assert "test accuracy" in capsys.readouterr().out
    assert main(["info", "--weights", str(out)]) == 0


def test_module_entry_point():
    done = subprocess.run(
        [sys.executable, "-m", "jaxdream", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "dream" in done.stdout


def test_cli_fills_the_persistent_compilation_cache(tmp_path, photo):
    import os
    from pathlib import Path

    cache = Path(os.environ["JAXDREAM_CACHE_DIR"])
    before = set(cache.rglob("*"))
    # A configuration no other test compiles, so its program is new to this process.
    argv = [
        "dream",
        str(photo),
        "-o",
        str(tmp_path / "c.png"),
        "--size",
        "40",
        "--steps",
        "1",
        "--iterations",
        "3",
        "-q",
    ]
    assert main(argv) == 0
    assert set(cache.rglob("*")) - before


def test_help_needs_no_jax_and_shows_defaults():
    # What makes --help fast: it builds the parser without importing JAX (its speed is
    # measured, not asserted: 0.06 s here).
    script = (
        "import sys; from jaxdream.cli import build_parser; build_parser(); "
        "print('jax' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.split() == ["False"], done.stderr
    helped = subprocess.run(
        [sys.executable, "-m", "jaxdream", "dream", "--help"], capture_output=True, text=True
    )
    assert helped.returncode == 0 and "(default: 30)" in " ".join(helped.stdout.split())


def test_flags_are_made_from_the_configuration():
    """The dream flags are DreamConfig's fields (defaults, choices, help), presets its values:
    what the command line reads is the preset's config, with the flags typed beside it."""
    from jaxdream import cli
    from jaxdream.compute import PRECISIONS
    from jaxdream.config import DreamConfig, Level, config_from_flags, flag_values
    from jaxdream.model import CONV_IMPLS
    from jaxdream.presets import PRESETS, preset_config

    # the names --help lists without JAX are the engine's
    assert set(cli.CONV_CHOICES) == {"auto", *CONV_IMPLS}
    assert set(cli.PRECISION_CHOICES) == set(PRECISIONS)
    config = DreamConfig(size=(48, 64), levels=(Level(0), Level(2, tiles=(1, 5), maps=3)))
    assert config_from_flags(flag_values(config)) == config  # the flags' values and back
    parser = cli.build_parser()
    assert cli._core.dream_config(parser.parse_args(["dream"])) == preset_config("vivid")
    for name in PRESETS:
        args = cli.parse_args(["dream", "--preset", name])
        assert cli._core.dream_config(args) == preset_config(name) == PRESETS[name].config
        assert args.color == PRESETS[name].color and args.typed == {"preset"}
    args = cli.parse_args(["dream", "--pres", "article", "--steps", "5", "--no-color", "-q"])
    assert cli._core.dream_config(args) == DreamConfig(steps=5, prepare="article")  # flags win
    assert args.typed == {"preset", "steps", "color"}  # long options, abbreviated or not
    assert cli.parse_args(["zoom"]).iterations == 2 and cli.parse_args(["dream"]).iterations == 6
    oip_args = parser.parse_args(["oip"])
    import inspect

    from jaxdream.patterns import oip

    defaults = {k: v.default for k, v in inspect.signature(oip).parameters.items()}
    assert oip_args.steps == defaults["steps"] and oip_args.epsilon == defaults["epsilon"]


def test_explore_writes_a_sheet_strongest_first(tmp_path, photo, capsys):
    out = tmp_path / "sheet.png"
    argv = ["explore", str(photo), "-o", str(out), "--layer", "conv2", "--maps", "0-5"]
    assert main([*argv, "--size", "48", "--iterations", "1", "--steps", "2", "-q"]) == 0
    said = capsys.readouterr().out
    assert "6 maps of conv2" in said and "in one call" in said
    with Image.open(out) as sheet:
        assert sheet.width > sheet.height > 0


def test_explore_ranks_by_strength_and_marks_dead_maps(bundled, smooth_image):
    from jaxdream.config import DreamConfig
    from jaxdream.exploring import DEAD_BELOW, explore, parse_maps

    _, params = bundled
    cfg = DreamConfig(size=48, iterations=1, steps=3)
    ranked = explore(smooth_image, "conv3", [56, 3, 12, 40], cfg, params=params)
    assert sorted(e.map for e in ranked) == [3, 12, 40, 56]
    strengths = [e.strength for e in ranked]
    assert strengths == sorted(strengths, reverse=True)
    assert all(e.dead == (e.strength < DEAD_BELOW) for e in ranked)
    for e in ranked:  # each is the dream of that map alone
        from jaxdream.dreaming import dream

        alone = dream(smooth_image, cfg.replace(map=e.map), params=params)
        np.testing.assert_allclose(e.result.image, alone.image, atol=1e-4)
    with pytest.raises(Exception, match="maps must be in"):
        parse_maps("70", 64)


def test_a_dream_that_changes_nothing_says_so_and_names_maps_that_respond(tmp_path, capsys):
    cat = Path(__file__).parents[1] / "jaxdream" / "assets" / "chelsea.jpg"
    out = tmp_path / "d.png"
    argv = ["dream", str(cat), "-o", str(out), "--preset", "article", "--map", "18"]
    assert main([*argv, "--size", "112", "-q"]) == 0  # map 18 of conv3 is dead on this photo
    err = capsys.readouterr().err
    assert "channel(conv3, 18) gave no gradient on this photo" in err
    maps = json.loads(err.split("respond to this photo: ")[1].strip())
    assert len(maps) == 5 and 18 not in maps
    assert main([*argv[:-1], "47", "--size", "112", "-q"]) == 0  # one it named: no warning
    assert "gave no gradient" not in capsys.readouterr().err


def test_every_command_is_a_module_with_register_and_run():
    """A command is one module of ``jaxdream.cli`` named once in ``COMMANDS``."""
    import importlib

    from jaxdream import cli

    parser = cli.build_parser()
    listed = parser._subparsers._group_actions[0].choices
    assert list(listed) == list(cli.COMMANDS)
    for name in cli.COMMANDS:
        module = importlib.import_module(f"jaxdream.cli.{name}")
        assert callable(module.register) and callable(module.run)
        assert listed[name].get_default("func") is module.run


def test_keeping_and_encoding_run_in_order_and_stop_at_the_first_error():
    import threading

    from jaxdream.background import KeepAndEncode

    class Bar:
        n = 0

        def update(self):
            self.n += 1

    kept, encoded, threads = [], [], set()

    def keep(k):
        threads.add(("keep", threading.current_thread().name))
        kept.append(k)

    def encode(k):
        threads.add(("encode", threading.current_thread().name))
        encoded.append(k)

    bar = Bar()
    with KeepAndEncode(bar, ahead=2) as jobs:
        for k in range(20):
            jobs.put(functools.partial(keep, k), functools.partial(encode, k))
    assert kept == encoded == list(range(20)) and bar.n == 20
    assert len({name for _, name in threads}) == 2  # one thread each

    go, after = threading.Event(), []

    def failing(k):
        go.wait(10)  # every frame is queued before the first keep ends
        if k == 3:
            raise OSError("the disk is full")
        if k > 3:
            after.append(k)
            time.sleep(0.2)  # 10 of them: 2 s, against the moment it takes to see the error

    with pytest.raises(OSError, match="disk is full"), KeepAndEncode(None, ahead=50) as jobs:
        for k in range(40):
            jobs.put(functools.partial(failing, k), lambda: None)
        go.set()
    assert len(after) < 10  # the keeps queued behind the failure were cancelled, not run
