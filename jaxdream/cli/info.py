"""``jaxdream info``: the model, its layers, the devices and the versions; with ``--network``, a
user's own network's layers and their shapes."""

from __future__ import annotations

import argparse
import json

from jaxdream.cli._core import load_network_flags, network_flags, versions


def register(sub, preset: str | None) -> None:
    p = sub.add_parser("info", help="describe the model, its layers and the devices")
    network_flags(p)
    p.add_argument("--json", action="store_true", help="everything, as JSON")
    p.set_defaults(func=run)


def _input_note(model) -> str:
    """The input and padding, where they are not the article network's 28x28x1 and valid."""
    h, w = model.input_size
    if (h, w, model.channels, model.padding) == (28, 28, 1, "valid"):
        return ""
    return f"{h}x{w}x{model.channels} input, {model.padding} padding, "


def run(args: argparse.Namespace) -> int:
    if getattr(args, "network", None) is not None or getattr(args, "input_shape", None):
        return run_network(args)
    import jax

    from jaxdream.checkpoint import load_checkpoint, weights_path
    from jaxdream.maps import CLASSES, load_tables
    from jaxdream.model import activation_shapes, architecture_dict, param_count

    path = weights_path(args.weights)
    model, params, meta = load_checkpoint(path)
    info = {
        "weights": str(path),
        "model": {"widths": list(model.widths), "hidden": model.hidden},
        "architecture": architecture_dict(model),
        "parameters": param_count(params),
        "test_accuracy": meta.get("test_accuracy"),
        "layers": {k: list(v) for k, v in activation_shapes(model).items()},
        "devices": [str(d) for d in jax.devices()],
        "versions": versions(),
    }
    tables = load_tables(path)  # measured on MNIST for these weights (jaxdream maps --save)
    info["maps"] = tables and {
        name: {
            "most_selective": [t.most_selective(d) for d in range(CLASSES)],
            "selectivity": [
                round(float(t.selectivity_for(d)[t.most_selective(d)]), 3) for d in range(CLASSES)
            ],
        }
        for name, t in tables.items()
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    accuracy = info["test_accuracy"]
    layers = ", ".join(
        f"{k} {'x'.join(map(str, v))}" for k, v in info["layers"].items() if not k.endswith("_pre")
    )
    devices = jax.devices()
    print(
        "\n".join(
            [
                f"weights  {path}",
                f"model    conv widths {list(model.widths)}, dense {model.hidden}, "
                + _input_note(model)
                + f"{info['parameters']:,} parameters"
                + (f", {accuracy:.2%} MNIST test accuracy" if accuracy is not None else ""),
                f"layers   {layers} (and *_pre before each ReLU)",
                f"devices  {len(devices)} x {devices[0].platform} ({jax.default_backend()} "
                f"backend)",
                "versions " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
                *_maps_lines(info["maps"]),
                "(--json for all of it, as JSON)",
            ]
        )
    )
    return 0


def run_network(args: argparse.Namespace) -> int:
    """A user's network (``--network``): its input shape, parameters and layers."""
    import jax

    from jaxdream.loading import weight_shapes
    from jaxdream.model import param_count

    network = load_network_flags(args, fresh=False)  # refused before anything is printed
    params = network.params
    # its own layers (without the names the presets read through layer_aliases)
    layers = network.layer_shapes() if params is None else network.network.activation_shapes()
    if params is None:  # a Linen network without --weights: its shapes are enough
        params = weight_shapes(network.model, network.input_shape)
    info = {
        "network": args.network,
        "weights": args.weights,
        "input_shape": list(network.input_shape),
        "parameters": param_count(params),
        "layers": {k: list(v) for k, v in layers.items()},
        "devices": [str(d) for d in jax.devices()],
        "versions": versions(),
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    width = max(map(len, layers))
    h, w, c = network.input_shape
    weights = args.weights or "fresh (no --weights)"
    print(
        "\n".join(
            [
                f"network  {args.network} ({type(network.model).__name__}), weights {weights}",
                f"input    {h}x{w}x{c}, {info['parameters']:,} parameters",
                "layers",
                *(f"  {k:<{width}}  {'x'.join(map(str, v))}" for k, v in layers.items()),
                "(--json for all of it, as JSON)",
            ]
        )
    )
    return 0


# --------------------------------------------------------------------------- oip


def _maps_lines(maps: dict | None, layer: str = "conv3") -> list[str]:
    """One line: the map of ``layer`` most selective for each digit (``jaxdream.maps``)."""
    if not maps or layer not in maps:
        return ["maps     not measured for these weights (jaxdream maps --save)"]
    best = maps[layer]["most_selective"]
    return [
        f"maps     {layer}'s most selective map for digits 0-9: {' '.join(map(str, best))} "
        f"(the article's 9-map 56 is map {best[9]} here; --json for all layers)"
    ]
