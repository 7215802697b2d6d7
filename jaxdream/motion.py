"""Zoom: a photo dreamt, then zoomed in a little and dreamt again, frame after frame (the
classic "infinite zoom"), by ONE compiled program for every frame.

Frame 0 is the photo dreamt; frame ``k + 1`` is frame ``k``'s dream moved by the ``Motion``
(scaled about the centre by ``zoom``, turned by ``rotate`` degrees counter-clockwise, the view
moved by ``pan`` pixels), standardized, and dreamt again with the config's iterations (a few:
the command line's default is ``MOTION_ITERATIONS``). The dream's state (the standardized
working image and the colours it is shown in) carries from frame to frame, moved with it, as
the classic does. The move and the dream are one program (``zoom_step``): the motion's numbers
and the frame's index are traced arguments, so every frame, the first (the identity move)
included, runs the same compiled program; each frame's key is ``fold_in(key(seed), k)``.

The next frame is queued on the device before the last one is copied to the host, so the
device never waits for the host; frames come out as uint8.

A colour (3-channel) network's zoom (``jaxdream.network.is_color``) carries the photo's RGB
standardized as a still colour dream's (``dreaming.prepare_rgb``), ``(H, W, 3)``, moved channel
by channel; its frames are the dreams' own colours (``color`` unused). At the photo's size its
layer is RGB too (``fullres.zoom_rgb_layer``, ``fullres.rgb_tone``), with no chroma.

At the photo's size (``size="photo"``, where the photo is larger than the working size), a
layer of the photo's own pixels is carried beside the working state, at the photo's size up to
``fullres.ZOOM_MAX_SIDE`` on the longer side. Frame 0's is the photo: its luminance
standardized (by the mean and spread of the photo's luminance, ``fullres.luminance_tone``) and
its chroma (R and B minus the luminance, ``fullres.zoom_layers``). Frame ``k + 1``'s is frame
``k``'s moved by the same ``Motion`` at the layer's size (the pan scaled from working pixels,
``layer_move``) and standardized, plus ``strength`` times the change frame ``k + 1``'s dream
made (its dream minus its moved, standardized input), enlarged bicubically; the chroma moves
with it. Standardizing the layer after each move, as the working state is, keeps the two in
step: at strength 1 the layer's coarse picture is the working dream's, with the photo's detail
under it; neither grows in contrast frame after frame; strength 0 is the photo moved frame
after frame, its luminance kept at the photo's mean and spread as the working zoom keeps its
own. A frame is ``layer * spread + mean`` under the chroma, in uint8, made on the device with
the move (``carry_step``: a second compiled program, one for every frame, the motion traced).
The working state is never read back from the layer: the dreams are the working-size zoom's
own. At the working size (or enlarged) a strength other than 1 carries such a layer at the
working size, shown as the dreams are; at strength 1 the frames are the dreams themselves.

``render_zoom`` writes a zoom to a video file (``jaxdream.video.writing``), keeping its frames
and every ``STATE_EVERY``-th state as they are made so that an interrupted zoom resumes to the
same bytes (``jaxdream.video.resume``); ``jaxdream zoom`` is that function behind flags.

>>> import numpy as np
>>> photo = np.random.default_rng(0).random((48, 64))
>>> frames = list(zoom(photo, DreamConfig(size=32, iterations=1, steps=1), frames=3))
>>> len(frames), frames[0].shape, frames[0].dtype
(3, (24, 32), dtype('uint8'))
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterator, Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from jaxdream import fullres, programs
from jaxdream import parallel as par
from jaxdream.carve import DreamSpec, Knobs, carve_batch
from jaxdream.checks import flag, number, whole_number
from jaxdream.config import DreamConfig
from jaxdream.display import Display, colorize, render
from jaxdream.dreaming import check_finite, prepare
from jaxdream.errors import ConfigError
from jaxdream.fullres import OUTPUT_SIZES
from jaxdream.imageio import GRAY_WEIGHTS, load_photo, rgb_float
from jaxdream.imageops import resize_host, standardize
from jaxdream.network import Network, is_color, network_argument, resolve

MOTION_ITERATIONS = 2  # iterations per frame: each frame carries the dream before it
MAX_FRAMES = 1_000_000
MAX_ZOOM = 10.0  # per frame; 1/MAX_ZOOM the other way


@dataclasses.dataclass(frozen=True)
class Motion:
    """How one frame moves to the next: ``zoom`` (> 1 zooms in, < 1 out) about the centre,
    ``rotate`` degrees counter-clockwise, ``pan`` ``(dx, dy)``: the view moves ``dx`` pixels
    right and ``dy`` down (the picture slides the other way).

    >>> Motion(zoom=2.0).matrix((4, 4))[0].tolist()  # half the view, twice the size
    [[0.5, 0.0], [-0.0, 0.5]]
    """

    zoom: float = 1.05
    rotate: float = 0.0
    pan: tuple[float, float] = (0.0, 0.0)

    def check(self) -> None:
        """``ConfigError`` for a zoom <= 0 or beyond ``MAX_ZOOM`` either way, and for NaN or
        infinite values anywhere."""
        number("zoom", self.zoom, -math.inf, math.inf)
        if self.zoom <= 0:
            raise ConfigError(f"zoom must be > 0 (1.05 zooms in by 5% a frame), got {self.zoom:g}")
        if not 1 / MAX_ZOOM <= self.zoom <= MAX_ZOOM:
            raise ConfigError(
                f"zoom must be in [{1 / MAX_ZOOM:g}, {MAX_ZOOM:g}] a frame, got {self.zoom:g}"
            )
        number("rotate", self.rotate, -360, 360)
        if not isinstance(self.pan, tuple | list) or len(self.pan) != 2:
            raise ConfigError(f"pan is two numbers (dx, dy), got {self.pan!r}")
        for name, v in zip(("pan dx", "pan dy"), self.pan, strict=True):
            number(name, v, -1e4, 1e4)

    def matrix(self, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """``(A, t)`` in ``(y, x)`` order: output pixel ``p`` samples the previous frame at
        ``c + A (p - c) + t``, ``c`` the centre (float32, traced by ``zoom_step``)."""
        del shape  # the move is in pixels about the centre, whatever the size
        theta = math.radians(self.rotate)
        cos, sin = math.cos(theta) / self.zoom, math.sin(theta) / self.zoom
        a = np.array([[cos, sin], [-sin, cos]], np.float32)
        t = np.array([self.pan[1], self.pan[0]], np.float32)
        return a, t


IDENTITY = (np.eye(2, dtype=np.float32), np.zeros(2, np.float32))


def warp(image: jax.Array, matrix: jax.Array, offset: jax.Array) -> jax.Array:
    """``image`` ``(H, W)`` or ``(H, W, C)`` moved by the affine map ``(matrix, offset)``
    (``Motion.matrix``), bilinear, reflected at the borders. The identity returns the image
    exactly.

    >>> x = jnp.arange(12.0).reshape(3, 4)
    >>> bool((warp(x, *IDENTITY) == x).all())
    True
    """
    h, w = image.shape[:2]
    cy, cx = (h - 1) / 2, (w - 1) / 2
    vy, vx = jnp.meshgrid(
        jnp.arange(h, dtype=jnp.float32) - cy, jnp.arange(w, dtype=jnp.float32) - cx, indexing="ij"
    )
    # Elementwise, not a matrix product: full float32 on every backend.
    sy = matrix[0, 0] * vy + matrix[0, 1] * vx + (cy + offset[0])
    sx = matrix[1, 0] * vy + matrix[1, 1] * vx + (cx + offset[1])

    def sample(channel):
        return jax.scipy.ndimage.map_coordinates(channel, [sy, sx], order=1, mode="reflect")

    if image.ndim == 2:
        return sample(image)
    return jax.vmap(sample, in_axes=2, out_axes=2)(image)


@functools.partial(jax.jit, static_argnames=("spec", "execution"))
def zoom_step(
    spec: DreamSpec,
    params: Mapping,
    image: jax.Array,
    rgb: jax.Array,
    knobs: Knobs,
    key: jax.Array,
    index: jax.Array,
    matrix: jax.Array,
    offset: jax.Array,
    execution: par.Execution = par.Execution(),
) -> tuple[jax.Array, jax.Array]:
    """One frame: the previous frame's standardized ``image`` ``(H, W)`` and its colours
    ``rgb`` ``(H, W, 3)`` moved by ``(matrix, offset)``, then the image dreamt (``carve``
    with the key ``fold_in(key, index)``). Returns ``(dream, rgb)``: the next state."""
    moved = standardize(warp(image, matrix, offset))
    rgb = jnp.clip(warp(rgb, matrix, offset), 0.0, 1.0)
    keys = jax.random.fold_in(key, index)[None]
    dreams, _ = carve_batch(spec, params, moved[None], knobs, keys, execution)
    return dreams[0], rgb


def _reflected(index: jax.Array, size: int) -> jax.Array:
    """Integer sample positions reflected into ``0..size-1`` about the borders (``... 1 0 | 0 1
    ... n-1 | n-1 ...``, ``map_coordinates``' ``"reflect"``)."""
    index = jnp.mod(index, 2 * size)
    return jnp.where(index >= size, 2 * size - 1 - index, index)


def warp_many(images: list, matrix: jax.Array, offset: jax.Array) -> list:
    """``warp`` of several images of one size ``(H, W)`` or ``(H, W, C)``, their sample
    positions and bilinear weights computed once: the same numbers to float rounding, in less
    time and far fewer temporaries than a ``warp`` of each (the layer's move at 12 megapixels:
    168 MB of them against 379)."""
    h, w = images[0].shape[:2]
    cy, cx = (h - 1) / 2, (w - 1) / 2
    vy = (jnp.arange(h, dtype=jnp.float32) - cy)[:, None]
    vx = (jnp.arange(w, dtype=jnp.float32) - cx)[None, :]
    sy = matrix[0, 0] * vy + matrix[0, 1] * vx + (cy + offset[0])
    sx = matrix[1, 0] * vy + matrix[1, 1] * vx + (cx + offset[1])
    y0, x0 = jnp.floor(sy), jnp.floor(sx)
    fy, fx = (sy - y0)[..., None], (sx - x0)[..., None]
    y0, x0 = y0.astype(jnp.int32), x0.astype(jnp.int32)
    above, below = _reflected(y0, h) * w, _reflected(y0 + 1, h) * w
    left, right = _reflected(x0, w), _reflected(x0 + 1, w)
    out = []
    for image in images:
        flat = image.reshape(h * w, -1)
        top = flat[above + left] * (1 - fx) + flat[above + right] * fx
        bottom = flat[below + left] * (1 - fx) + flat[below + right] * fx
        out.append((top * (1 - fy) + bottom * fy).reshape(image.shape))
    return out


def _enlarge(change: jax.Array, taps: tuple) -> jax.Array:
    """``change`` ``(h, w)`` or ``(h, w, C)`` enlarged by the separable ``fullres.cubic_taps``
    ``(rows, cols)``: the columns of the small image first, then whole rows gathered (Pillow's
    order); every channel by the same taps."""
    (row_index, row_weight), (col_index, col_weight) = taps
    if change.ndim == 3:  # the weights broadcast over the channels
        row_weight, col_weight = row_weight[..., None], col_weight[..., None]
    cols = sum(change[:, col_index[:, k]] * col_weight[:, k] for k in range(col_index.shape[1]))
    return sum(cols[row_index[:, k]] * row_weight[:, k, None] for k in range(row_index.shape[1]))


@functools.partial(jax.jit, static_argnames=("pixels",))
def carry_step(
    layer: jax.Array,
    chroma: jax.Array | None,
    before: jax.Array,
    dream: jax.Array,
    strength: jax.Array,
    matrix: jax.Array,
    offset: jax.Array,
    layer_matrix: jax.Array,
    layer_offset: jax.Array,
    taps: tuple,
    tone: jax.Array,
    pixels: bool = True,
) -> tuple[jax.Array, jax.Array | None, jax.Array | None]:
    """The layer a zoom shows, carried one frame: the last frame's ``layer`` (``(H, W)``, or
    ``(H, W, 3)`` for a colour network) and its ``chroma`` moved by ``(layer_matrix,
    layer_offset)`` (the frame's move at the layer's size), standardized, plus ``strength``
    times the change this frame's ``dream`` made to its input (``before``, the last working
    state, moved by ``(matrix, offset)`` and standardized as ``zoom_step`` moves it), enlarged
    to the layer by ``taps``. Returns ``(layer, chroma, frame)``; with ``pixels``, ``frame`` is
    the uint8 picture: ``layer * spread + mean`` (``tone``), the luminance under the chroma
    where one is carried, else ``None``."""
    change = dream - standardize(warp(before, matrix, offset))
    if change.shape != layer.shape:
        change = _enlarge(change, taps)
    (layer,) = warp_many([layer], layer_matrix, layer_offset)
    if chroma is not None:
        # The same sample positions, computed again behind a barrier: shared, XLA keeps them
        # as three int32 planes (100 MB at 4K); apart, each gather computes its own as it goes.
        move = jax.lax.optimization_barrier((layer_matrix, layer_offset))
        (chroma,) = warp_many([chroma], *move)
    layer = standardize(layer) + strength * change
    if not pixels:
        return layer, chroma, None
    y = layer * tone[1] + tone[0]
    if chroma is not None:
        red, blue = chroma[..., 0], chroma[..., 1]
        green = -(GRAY_WEIGHTS[0] * red + GRAY_WEIGHTS[2] * blue) / GRAY_WEIGHTS[1]
        y = y[..., None] + jnp.stack([red, green, blue], axis=-1)
    return layer, chroma, jnp.clip(jnp.rint(y * 255.0), 0.0, 255.0).astype(jnp.uint8)


class Layers(NamedTuple):
    """How a zoom's picture is carried beside its working state (``carry_step``): ``kind``
    (``"photo"``: at the photo's size, shown from the device; ``"working"``: at the working
    size, shown by the display), the first ``layer`` and ``chroma`` (``None`` in gray, at the
    working size and for a colour network), ``strength``, the move at the layer's size, the
    enlargement's ``taps`` and the photo's ``tone`` (``fullres.luminance_tone``; for a colour
    network ``fullres.rgb_tone``)."""

    kind: str
    layer: jax.Array
    chroma: jax.Array | None
    strength: np.float32
    move: tuple[np.ndarray, np.ndarray]
    taps: tuple
    tone: np.ndarray


def layer_move(move: tuple[np.ndarray, np.ndarray], working, shape) -> tuple:
    """The working-size move ``(A, t)`` (``Motion.matrix``) at a layer of ``shape``: pixels
    scale by ``S = diag(H / h, W / w)`` about the centres, so ``(S A S^-1, S t)``."""
    a, t = move
    s = np.array([shape[0] / working[0], shape[1] / working[1]], np.float64)
    a = (s[:, None] * np.asarray(a, np.float64) / s[None, :]).astype(np.float32)
    return a, (s * np.asarray(t, np.float64)).astype(np.float32)


class ZoomFrames:
    """The iterator ``zoom`` returns: uint8 frames, one a ``next``. ``index`` is the number of
    the next frame; ``state()`` what ``zoom(..., resume=...)`` continues from (host arrays:
    save them with ``numpy.savez``)."""

    def __init__(self, args: dict):
        self.__dict__.update(args)
        self._host: tuple[np.ndarray, np.ndarray] | None = None
        self._layers: tuple | None = None
        self._iterator = self._run()

    def __iter__(self) -> Iterator[np.ndarray]:
        return self

    def __next__(self) -> np.ndarray:
        return next(self._iterator)

    def state(self) -> dict[str, np.ndarray]:
        """The dream after the last frame yielded: ``image``, ``rgb``, ``reference`` (the
        photo's working image, the display's reference; ``image`` and ``reference`` are
        ``(H, W, 3)`` for a colour network) and ``next`` (its index + 1); and where a layer is
        carried (``Layers``), ``layer`` (and ``chroma`` where a gray network's frames are
        shown in colour)."""
        if self._host is None:
            raise ConfigError("no frame has been made yet: there is no state to keep")
        image, rgb = self._host
        state = {
            "image": image,
            "rgb": rgb,
            "reference": self.reference,
            "next": np.int64(self.index),
        }
        if self._layers is not None:
            layer, chroma = par.run(lambda: jax.device_get(self._layers))
            state["layer"] = np.asarray(layer)
            if chroma is not None:
                state["chroma"] = np.asarray(chroma)
        return state

    def render(self, image: np.ndarray, rgb: np.ndarray) -> np.ndarray:
        gray = render(image, self.reference, self.display)
        frame = colorize(gray, rgb) if self.color and gray.ndim == 2 else gray
        if self.enlarge_to is None:
            return frame
        h, w = self.enlarge_to
        return np.asarray(Image.fromarray(frame).resize((w, h), Image.Resampling.BICUBIC))

    def _run(self) -> Iterator[np.ndarray]:
        args = (
            self.spec,
            self.params,
            self.image,
            self.rgb,
            self.knobs,
            self.key,
            np.int32(self.index),
            *(IDENTITY if self.index == 0 else self.move),
            self.execution,
        )
        if self.index >= self.frames:
            return
        step = programs.compiled(zoom_step, args, (1, 2, 3, 4, 5, 6, 7, 8))
        a, t = self.move
        lay = self.layers
        carry = None
        if lay is not None:
            carry = programs.compiled(
                carry_step,
                (
                    lay.layer,
                    lay.chroma,
                    self.image,
                    self.image,
                    lay.strength,
                    *args[7:9],
                    *lay.move,
                    lay.taps,
                    lay.tone,
                    lay.kind == "photo",
                ),
                tuple(range(11)),
            )

        def carried(k: int, before, dream, layers):
            if carry is None:
                return None
            moves = (*IDENTITY, *IDENTITY) if k == 0 else (a, t, *lay.move)
            return carry(*layers, before, dream, lay.strength, *moves, lay.taps, lay.tone)

        first = step(*args[1:9])
        start = None if lay is None else (lay.layer, lay.chroma)
        current = upcoming = (first, carried(self.index, self.image, first[0], start))
        if lay is not None:  # the first layer is not held beside the frames (4K: 100 MB)
            lay = self.layers = lay._replace(layer=None, chroma=None)
            start = None
        try:
            while self.index < self.frames:
                k = self.index
                upcoming = None
                if k + 1 < self.frames:  # queued before this frame is awaited
                    (dream, rgb), full = current
                    following = step(
                        self.params, dream, rgb, self.knobs, self.key, np.int32(k + 1), a, t
                    )
                    upcoming = (
                        following,
                        carried(k + 1, dream, following[0], None if full is None else full[:2]),
                    )
                image, rgb = par.run(lambda c=current: jax.device_get(c[0]))
                check_finite(image, self.config)
                self._host = (image, rgb)
                full = current[1]
                self.index = k + 1
                if full is None:
                    frame = self.render(image, rgb)
                else:
                    self._layers = full[:2]
                    if lay.kind == "photo":
                        frame = np.asarray(par.run(lambda f=full: jax.device_get(f[2])))
                    else:
                        layer = np.asarray(par.run(lambda f=full: jax.device_get(f[0])))
                        frame = self.render(layer, rgb)
                yield frame
                current = upcoming
        finally:  # stopped early: the frame queued on the device is let finish, not abandoned
            if upcoming is not None:
                jax.block_until_ready(upcoming)

    def close(self) -> None:
        """Stop making frames; a frame still being made on the device is waited for, so that
        nothing runs on after the caller goes on."""
        self._iterator.close()

    def __enter__(self) -> ZoomFrames:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def zoom(
    photo,
    config: DreamConfig = DreamConfig(),
    *,
    frames: int = 120,
    zoom: float = 1.05,
    rotate: float = 0.0,
    pan: tuple[float, float] = (0.0, 0.0),
    display: Display = Display(),
    color: bool = False,
    size: str = "working",
    network: Network | None = None,
    params: Mapping | None = None,
    input_shape: tuple[int, int, int] | None = None,
    preprocess: Callable | None = None,
    model: Network | None = None,
    parallel: par.Execution | str = "auto",
    resume: Mapping | None = None,
) -> ZoomFrames:
    """``frames`` frames of an infinite zoom into ``photo`` (a path, PIL image or array),
    each dreamt with ``config`` (its ``iterations`` per frame: a few, e.g.
    ``MOTION_ITERATIONS``), moved by ``zoom``, ``rotate`` and ``pan`` per frame (``Motion``);
    uint8 frames yielded as they are made, in colour with ``color`` (a colour network's frames
    are its dreams' own colours, always: the module's docstring). ``size``
    (``fullres.OUTPUT_SIZES``): ``"working"``, at the working size; ``"photo"``, at the photo's
    (up to ``fullres.ZOOM_MAX_SIDE`` on the longer side), a layer of the photo's own pixels
    carried beside the dream (the module's docstring), where the photo is larger than the
    working size; ``"enlarged"``, the working-size frames enlarged to that size.
    ``config.strength``: how much of each frame's carving the frames show (0: the photo moved,
    frame after frame). ``resume``: a ``ZoomFrames.state()`` to continue from (its next frame
    on). Bad settings raise ``ConfigError`` (and a bad photo ``ImageError``) before any work.
    ``network``, ``params``, ``input_shape`` and ``preprocess`` as for ``jaxdream.dream``."""
    if not isinstance(config, DreamConfig):
        raise ConfigError(f"config must be a DreamConfig, not {type(config).__name__}")
    whole_number("frames", frames, 1, MAX_FRAMES)
    if not isinstance(display, Display):
        raise ConfigError(f"display must be a jaxdream.Display, got {type(display).__name__}")
    flag("color", color)
    if size not in OUTPUT_SIZES:
        raise ConfigError(f"size must be one of {', '.join(OUTPUT_SIZES)}, got {size!r}")
    if resume is not None and not isinstance(resume, Mapping):
        raise ConfigError(f"resume is a ZoomFrames.state() mapping, got {type(resume).__name__}")
    pan = tuple(pan) if isinstance(pan, tuple | list) else pan
    motion = Motion(zoom, rotate, pan)
    motion.check()
    network = network_argument(network, model)
    model, params = resolve(network, params, input_shape, preprocess)
    config.check(model)
    channels = is_color(model)  # the dreams carve the photo's RGB: their colours are their own
    loaded = load_photo(photo)
    shape = config.working_shape(loaded.shape)
    reference = prepare(loaded, shape, config, model)  # as dream() prepares it
    image, rgb, start = reference, np.clip(resize_host(rgb_float(loaded.rgb), shape), 0.0, 1.0), 0
    kind, out_shape = _layer_kind(size, config.strength, loaded.rgb.shape[:2], shape)
    if resume is not None:
        image, rgb, start, kept = _resumed(
            resume, shape, frames, kind, out_shape, color and not channels, channels
        )
        reference = np.asarray(resume["reference"], np.float32)
    execution = par.resolve(parallel, 1, config.tile_count())
    # The state lies where the step leaves it (replicated over a mesh, where the execution
    # has one): the first frame's inputs then match every later frame's, and one program runs.
    mesh = getattr(execution.images, "mesh", None)
    place = None if mesh is None else jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    image, rgb = (jax.device_put(np.asarray(a, np.float32), place) for a in (image, rgb))
    move = motion.matrix(shape)
    layers = None
    if kind is not None:
        tone = (0.0, 1.0)
        if kind == "photo":
            small = fullres.reduced_photo(loaded.rgb, out_shape)
            tone = (fullres.rgb_tone if channels else fullres.luminance_tone)(small)
            if resume is not None:
                layer = chroma = None
            elif channels:
                layer, chroma = fullres.zoom_rgb_layer(small, tone), None
            else:
                layer, chroma = fullres.zoom_layers(small, tone, color)
            del small
        else:
            layer, chroma = reference, None
        if resume is not None:
            layer, chroma = kept
        layers = Layers(
            kind,
            jax.device_put(np.asarray(layer, np.float32), place),
            None if chroma is None else jax.device_put(np.asarray(chroma, np.float32), place),
            np.float32(config.strength),
            layer_move(move, shape, layer.shape),
            tuple(fullres.cubic_taps(n, m) for n, m in zip(shape, layer.shape[:2], strict=True)),
            np.asarray(tone, np.float32),
        )
    return ZoomFrames(
        {
            "config": config,
            "spec": config.spec(model, shape),
            "params": params,
            "knobs": config.knobs(),
            "key": jax.random.key(config.seed),
            "execution": execution,
            "image": image,
            "rgb": rgb,
            "reference": reference,
            "move": move,
            "frames": frames,
            "index": start,
            "display": display,
            "color": color,
            "layers": layers,
            "enlarge_to": out_shape if size == "enlarged" and out_shape != shape else None,
        }
    )


def _layer_kind(size: str, strength: float, photo: tuple[int, int], working: tuple[int, int]):
    """``(kind, shape)``: the layer a zoom carries (``Layers.kind``, ``None``: none, the frames
    are the dreams themselves) and the size of its frames (``fullres.zoom_shape``)."""
    bigger = photo[0] * photo[1] > working[0] * working[1]
    if size == "working" or not bigger:
        return (None if strength == 1 else "working"), working
    shape = fullres.zoom_shape(photo)
    if size == "photo":
        return "photo", shape
    return (None if strength == 1 else "working"), shape


def _resumed(
    state: Mapping,
    shape: tuple[int, int],
    frames: int,
    kind: str | None,
    out_shape: tuple[int, int],
    chroma_kept: bool,
    channels: bool = False,
):
    """``(image, rgb, next, (layer, chroma))`` of a ``ZoomFrames.state()`` that fits these
    settings (``chroma_kept``: a chroma is carried; ``channels``: a colour network's, ``(H, W,
    3)``), else ``ConfigError``."""
    try:
        image = np.asarray(state["image"], np.float32)
        rgb = np.asarray(state["rgb"], np.float32)
        start = int(state["next"])
        reference = np.asarray(state["reference"], np.float32)
        layer = chroma = None
        if kind is not None:
            layer = np.asarray(state["layer"], np.float32)
            if kind == "photo" and chroma_kept:
                chroma = np.asarray(state["chroma"], np.float32)
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"cannot resume the zoom: its saved state is incomplete ({e})") from None
    depth = (3,) if channels else ()
    kinds = {2: "a gray (1-channel)", 3: "an RGB (3-channel)"}
    if image.ndim in kinds and image.ndim != 2 + len(depth):
        raise ConfigError(
            f"cannot resume: the saved zoom was dreamt by {kinds[image.ndim]} network, this one "
            f"is {kinds[2 + len(depth)]}"
        )
    if (
        image.shape != (*shape, *depth)
        or rgb.shape != (*shape, 3)
        or reference.shape != image.shape
    ):
        raise ConfigError(
            f"cannot resume: the saved frames are {image.shape[1]}x{image.shape[0]}, these "
            f"settings make {shape[1]}x{shape[0]}"
        )
    kept = [image, rgb]
    if layer is not None:
        layer_shape = out_shape if kind == "photo" else shape
        if layer.shape != (*layer_shape, *depth) or (
            chroma is not None and chroma.shape != (*layer_shape, 2)
        ):
            raise ConfigError(
                f"cannot resume: the saved layer is {layer.shape[1]}x{layer.shape[0]}, these "
                f"settings make {layer_shape[1]}x{layer_shape[0]}"
            )
        kept += [layer] + ([] if chroma is None else [chroma])
    if not all(np.all(np.isfinite(a)) for a in kept):
        raise ConfigError("cannot resume the zoom: its saved state holds NaN or infinite values")
    if not 0 < start <= frames:
        raise ConfigError(f"cannot resume at frame {start} of a zoom of {frames} frames")
    return image, rgb, start, (layer, chroma)
