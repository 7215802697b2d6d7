"""The benchmark suite must not rot: a tiny pass runs here. Nothing about speed is asserted."""

import json

import pytest

from benchmarks import suite


@pytest.mark.slow
def test_quick_suite_runs_and_reports(tmp_path, capsys):
    out = tmp_path / "record.json"
    assert suite.main(["--quick", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert set(record["workloads"]) == {"article", "cascade"}
    for w in record["workloads"].values():
        assert w["dream"]["median_s"] > 0 and w["compile"]["total_s"] > 0
        assert w["tiles"] in (5, 21)
    assert set(record["oip"]) == {"5", "8"} and set(record["many"]) == {"1", "2"}
    assert record["conv_impls"]["batch"] == 8
    assert set(record["conv_impls"]["image_steps_per_s"]) == {"xla", "im2col", "fast"}
    networks = record["networks"]
    assert set(networks) == {"mnist_cnn56", "user Linen CNN", "colour Linen CNN"}
    assert networks["mnist_cnn56"]["input_shape"] == [56, 56, 1]
    assert networks["user Linen CNN"]["input_shape"] == [28, 28, 1]
    assert networks["colour Linen CNN"]["input_shape"] == [32, 32, 3]
    for w in networks.values():
        assert w["dream"]["median_s"] > 0 and w["oip"]["image_steps_per_s"] > 0
        assert w["oip"]["batch"] == 8 and w["tiles"] == 5
    table = capsys.readouterr().out
    assert "article: one dream (5 tiles)" in table and "OIP image-steps/s, batch 8" in table
    assert "| mnist_cnn56 (56x56x1): one dream (5 tiles), conv4:3 |" in table
    assert "| user Linen CNN: OIP image-steps/s, batch 8 |" in table
    assert "| colour Linen CNN (32x32x3): one dream (5 tiles), Conv_1:3 |" in table
    assert "networks.colour_Linen_CNN.s_per_oip_image_step" in suite.headline(record)
    assert "networks.mnist_cnn56.dream_s" in suite.headline(record)


@pytest.mark.slow
def test_cold_start_times_each_new_process():
    record = suite.cold_start(size=32, processes=2)
    assert record["empty_cache"]["first_call_s"] > 0 and record["warm_cache"]["first_call_s"] > 0
    per_process = record["dream_median_s_per_process"]
    assert len(per_process) == 2 and all(t > 0 for t in per_process)
    table = suite.table({**_empty_record(), "cold_start": record})
    assert "median in each of 2 new processes" in table


@pytest.mark.slow
def test_each_peer_runs_in_a_process_of_its_own():
    rows = suite.bench_peers_isolated(["no-such-peer", "torch-eager"], 32, 1, 4)
    assert "unknown peer 'no-such-peer'" in rows["no-such-peer"]["skipped"]
    torch_row = rows["torch-eager"]  # without the 'bench' extra: skipped, and says why
    if "skipped" in torch_row:
        assert "not installed" in torch_row["skipped"]
    else:
        assert max(torch_row["checks"].values()) < 1e-4
        assert torch_row["ratio_peer_over_jaxdream"] > 0


def _empty_record() -> dict:
    return {"workloads": {}, "oip": {}, "many": {}}


def test_history_comparison_flags_regressions():
    base = {
        "machine": {"cpu": "c", "cores": 2},
        "device": {"platform": "cpu", "kind": "cpu", "count": 1},
        "commit": "a",
        "date": "d",
    }

    def record(dream_s):
        w = {
            "dream": {"median_s": dream_s, "min_s": dream_s, "max_s": dream_s},
            "compile": {"total_s": 1.0},
        }
        return {**base, "workloads": {"article": w}, "oip": {}}

    lines = suite.compare(record(0.2), [record(0.1)])
    assert any("article.dream_s" in ln and "REGRESSION" in ln for ln in lines)
    lines = suite.compare(record(0.1), [record(0.104)])
    assert not any("REGRESSION" in ln or "faster" in ln for ln in lines)
    noisy = {
        **record(0.1),
        "oip": {
            "5": {
                "one_vmap": {"median_s": 1.0, "min_s": 0.7, "max_s": 1.4},
                "best_image_steps_per_s": 100.0,
            }
        },
    }
    quiet = {**record(0.1), "oip": {"5": {"best_image_steps_per_s": 125.0}}}
    lines = suite.compare(noisy, [quiet])  # 25% slower, but within its own 70% spread
    assert any("oip.b5" in ln for ln in lines) and not any("REGRESSION" in ln for ln in lines)
    other = {**record(0.1), "machine": {"cpu": "other", "cores": 2}}
    assert suite.compare(record(0.1), [other]) == [
        "no earlier run on this machine kind to compare with"
    ]


def test_timed_reports_median_and_spread():
    calls = []
    t = suite.timed(lambda: calls.append(1), repeats=5, warmup=2)
    assert len(calls) == 7 and t["repeats"] == 5
    assert t["min_s"] <= t["median_s"] <= t["max_s"]


@pytest.mark.slow
def test_scale_benchmarks_run(tmp_path, capsys):
    from benchmarks import scale

    out = tmp_path / "scale.json"
    assert (
        scale.main(
            [
                "--devices",
                "2",
                "--photos",
                "3",
                "--size",
                "32",
                "--repeats",
                "1",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    record = json.loads(out.read_text())
    assert record["devices"]["2"]["devices"] == 2 and record["devices"]["2"]["photos"] == 3
    assert all(row["cores_used"] > 0 for row in record["devices"].values())
    folder = record["folder"]
    assert folder["photos"] == 3 and folder["programs_compiled"] == folder["working_shapes"] == 3
    assert "dreamed 3 photos" in folder["cli_said"]
    assert "photos on 2 CPU devices" in capsys.readouterr().out


@pytest.mark.slow
def test_per_call_and_start_up_rows_are_measured_and_shown():
    record = {**_empty_record(), "per_call": suite.per_call(size=32, repeats=2)}
    record["start_up"] = suite.start_up(processes=1)
    assert set(record["per_call"]) == {"2", "5"}
    assert all(r["core"]["wall_s"] > 0 for r in record["per_call"].values())
    up = record["start_up"]
    assert up["first_public_call_s"] > 0 and up["cli_article_wall_s"] > 0
    table = suite.table(record)
    assert table.count("over its compiled core") == 2 and "whole process, warm cache" in table
    assert "start_up.cli_article_wall_s" in suite.headline(record)


@pytest.mark.slow
def test_turns_time_each_side_in_a_process_of_its_own():
    from benchmarks import turns

    with pytest.raises(RuntimeError, match="no-such-peer"):
        turns.alternate("no-such-peer", 2, 32, 1, 1)
    pytest.importorskip("torch")
    row = turns.alternate("torch-eager", 2, 32, 1, 2)
    assert row["tiles"] == 2 and row["peer"]["repeats"] == 2
    assert row["ratio_peer_over_jaxdream"] > 0 and row["jaxdream-core"]["median_s"] > 0
    table = suite.table({**_empty_record(), "peers_apart": {"torch-eager": {"2 tiles": row}}})
    assert "processes apart: 2 tiles" in table


def test_size_sweep_and_strength_table_run(capsys):
    """benchmarks.sizes and benchmarks.strength, tiny: they run and say what they measured."""
    import numpy as np

    from benchmarks import sizes, strength
    from jaxdream.presets import preset_config

    config = preset_config("vivid").replace(size=48, iterations=1, steps=1)
    photo = np.random.default_rng(0).random((36, 48, 3)).astype(np.float32)
    row = sizes.dream_times(config, photo, repeats=1)
    assert row["median_s"] > 0 and tuple(row["shape"]) == (36, 48)
    # an iteration reads each level's tiles once and writes and reads its change
    assert sizes.traffic_bytes(config, (36, 48)) > 36 * 48 * 4 * (3 * 3 + 3)
    assert sizes.bandwidth_gb_s(megabytes=8, repeats=1) > 0

    photos = {"noise": [(photo * 255).astype(np.uint8)]}
    rows = strength.measure(photos, ["article"], [0.5, 1.0])
    assert [r["strength"] for r in rows] == [0.5, 1.0]
    assert rows[1]["rise"] == pytest.approx(1.0, abs=1e-3)  # the whole dream's own rise
    assert rows[0]["corr"] >= rows[1]["corr"] - 1e-6  # half the carving keeps more of the photo
    assert "| article | noise | 0.5 |" in strength.table(rows)
