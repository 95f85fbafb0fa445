"""Typed configuration of the ST-Synth generator; presets and difficulties are named instances.

Units, once for all fields: sizes of frames in pixels, durations in frames,
object radii and speeds as fractions of ``min(width, height)`` (per frame for
speeds), probabilities in [0, 1]. Every check a value must pass is made when
the dataclass is built, so an impossible setting fails before any file is
written, with a message naming the field.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .vocab import BACKGROUND_KINDS, DEFAULT_COLOURS, DEFAULT_SIZES, SHAPES, Colour, SizeClass
from .. import errors as _errors

#: libx264 presets PyAV accepts by name.
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")

#: Smallest circumradius (pixels) an object may have; smaller shapes lose their form.
MIN_RADIUS_PX = 3.0


class ConfigError(_errors.SynthError, _errors.ConfigError):
    """A generator setting is invalid or the settings cannot be met together."""


def _range(name: str, value: tuple, lo: float, hi: float | None = None, integer: bool = False) -> None:
    if len(value) != 2:
        raise ConfigError(f"{name} must be a (min, max) pair, got {value!r}")
    a, b = value
    for v in (a, b):
        if integer and not isinstance(v, int):
            raise ConfigError(f"{name} must hold integers, got {value!r}")
        if v < lo or (hi is not None and v > hi):
            raise ConfigError(f"{name} values must lie in [{lo}, {hi if hi is not None else 'inf'}], got {value!r}")
    if a > b:
        raise ConfigError(f"{name} must be (min, max) with min <= max, got {value!r}")


def _prob(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must be a probability in [0, 1], got {value!r}")


@dataclass(frozen=True)
class VideoSettings:
    """Size, timing and encoding of the videos.

    ``sample_frames`` is T, the number of frames the model's sampler picks
    uniformly over a clip's ``meta.split`` (SPEC §2.1); every time coordinate in
    the training answers is the index of a sampled frame divided by ``T - 1``.
    Width and height must be even (H.264 with yuv420p halves the chroma planes).
    """

    width: int = 320
    height: int = 240
    num_frames: int = 100
    fps: float = 10.0
    sample_frames: int = 100
    crf: int = 16
    preset: str = "ultrafast"

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 32 or v > 4096:
                raise ConfigError(f"video {name} must be an integer in 32..4096, got {v!r}")
            if v % 2:
                raise ConfigError(f"video {name} must be even for H.264 with yuv420p, got {v}")
        if not isinstance(self.num_frames, int) or self.num_frames < 8:
            raise ConfigError(f"video num_frames must be an integer >= 8, got {self.num_frames!r}")
        if not (isinstance(self.fps, (int, float)) and math.isfinite(self.fps) and 0 < self.fps <= 240):
            raise ConfigError(f"video fps must be a number in (0, 240], got {self.fps!r}")
        if not isinstance(self.sample_frames, int) or not 2 <= self.sample_frames <= 1000:
            # above 1000 two sampled frames can round (3 decimals) to the same time value
            raise ConfigError(f"sample_frames (T) must be an integer in 2..1000, got {self.sample_frames!r}")
        if not isinstance(self.crf, int) or not 0 <= self.crf <= 51:
            raise ConfigError(f"crf must be an integer in 0..51, got {self.crf!r}")
        if self.preset not in X264_PRESETS:
            raise ConfigError(f"preset must be one of {X264_PRESETS}, got {self.preset!r}")

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps


@dataclass(frozen=True)
class ImageSettings:
    """Size of the still images (PNG)."""

    width: int = 320
    height: int = 240

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 32 or v > 4096:
                raise ConfigError(f"image {name} must be an integer in 32..4096, got {v!r}")


@dataclass(frozen=True)
class Difficulty:
    """How hard a scene is: clutter, object size, speed, occlusion, camera motion.

    ``distractors``: objects that copy the scene's target and change exactly one
    attribute (colour, shape or size), so that only a full referring phrase
    picks the target. ``extra_objects``: objects with free attributes.
    ``size_scale`` multiplies every size class radius. ``speed``: range of
    object speeds as a fraction of ``min(width, height)`` per frame.
    ``occluder_prob``: chance of a large object that sweeps over the others.
    ``pan_prob``/``pan_extent``: chance of a camera pan and its total shift as a
    fraction of the frame size. ``events``: events per video.
    ``event_length``: event durations as fractions of the video length.
    """

    name: str
    distractors: tuple[int, int] = (1, 2)
    extra_objects: tuple[int, int] = (1, 2)
    size_scale: float = 1.0
    speed: tuple[float, float] = (0.008, 0.02)
    occluder_prob: float = 0.25
    pan_prob: float = 0.3
    pan_extent: tuple[float, float] = (0.04, 0.1)
    events: tuple[int, int] = (2, 3)
    event_length: tuple[float, float] = (0.15, 0.35)
    backgrounds: tuple[str, ...] = BACKGROUND_KINDS

    def __post_init__(self) -> None:
        _range(f"difficulty {self.name!r} distractors", self.distractors, 0, 8, integer=True)
        _range(f"difficulty {self.name!r} extra_objects", self.extra_objects, 0, 8, integer=True)
        _range(f"difficulty {self.name!r} events", self.events, 1, 8, integer=True)
        _range(f"difficulty {self.name!r} speed", self.speed, 1e-4, 0.2)
        _range(f"difficulty {self.name!r} pan_extent", self.pan_extent, 0.0, 0.3)
        _range(f"difficulty {self.name!r} event_length", self.event_length, 0.02, 0.8)
        if not 0.3 <= self.size_scale <= 2.0:
            raise ConfigError(f"difficulty {self.name!r} size_scale must lie in [0.3, 2.0], got {self.size_scale}")
        _prob(f"difficulty {self.name!r} occluder_prob", self.occluder_prob)
        _prob(f"difficulty {self.name!r} pan_prob", self.pan_prob)
        if not self.backgrounds or any(b not in BACKGROUND_KINDS for b in self.backgrounds):
            raise ConfigError(f"difficulty {self.name!r} backgrounds must be a non-empty subset of {BACKGROUND_KINDS}")

    @property
    def max_objects(self) -> int:
        """Most objects a scene can hold: target, distractors, extras and the occluder."""
        return 1 + self.distractors[1] + self.extra_objects[1] + (1 if self.occluder_prob > 0 else 0)


DIFFICULTIES: dict[str, Difficulty] = {
    "easy": Difficulty(
        name="easy",
        distractors=(0, 1),
        extra_objects=(0, 1),
        size_scale=1.2,
        speed=(0.006, 0.014),
        occluder_prob=0.0,
        pan_prob=0.0,
        events=(1, 2),
        event_length=(0.2, 0.4),
        backgrounds=("solid", "gradient"),
    ),
    "normal": Difficulty(name="normal"),
    "hard": Difficulty(
        name="hard",
        distractors=(2, 3),
        extra_objects=(1, 2),
        size_scale=0.8,
        speed=(0.012, 0.028),
        occluder_prob=0.5,
        pan_prob=0.5,
        events=(2, 4),
        event_length=(0.12, 0.3),
        backgrounds=("gradient", "noise"),
    ),
    # The embedded model's world (preset "embedded"): large objects on calm backgrounds, a
    # distractor or two, no occluder and no camera pan.
    "embedded": Difficulty(
        name="embedded",
        distractors=(1, 2),
        extra_objects=(0, 1),
        size_scale=1.5,
        speed=(0.008, 0.018),
        occluder_prob=0.0,
        pan_prob=0.0,
        events=(1, 2),
        event_length=(0.25, 0.5),
        backgrounds=("solid", "gradient"),
    ),
}
# Its first curriculum step: one object alone, so that locating is learnt before choosing.
DIFFICULTIES["embedded-single"] = replace(
    DIFFICULTIES["embedded"], name="embedded-single", distractors=(0, 0), extra_objects=(0, 0)
)


@dataclass(frozen=True)
class SceneSettings:
    """The vocabulary of scenes and the look of backgrounds.

    ``unique_colours``: no two objects ever share a colour (colour changes pick
    an unused one); distractors then differ from the target in colour only. Backgrounds are
    drawn with HSV value in ``background_value`` and saturation in
    ``background_saturation`` (muted and darker than the object colours).
    """

    colours: tuple[Colour, ...] = DEFAULT_COLOURS
    shapes: tuple[str, ...] = SHAPES
    sizes: tuple[SizeClass, ...] = DEFAULT_SIZES
    unique_colours: bool = False
    background_value: tuple[float, float] = (0.12, 0.42)
    background_saturation: tuple[float, float] = (0.0, 0.45)

    def __post_init__(self) -> None:
        names = [c.name for c in self.colours]
        if len(names) < 2 or len(set(names)) != len(names):
            raise ConfigError(f"scene colours need at least two distinct names, got {names}")
        if len(set(c.rgb for c in self.colours)) != len(self.colours):
            raise ConfigError("scene colours must have distinct rgb values")
        if len(self.shapes) < 2 or len(set(self.shapes)) != len(self.shapes) or any(s not in SHAPES for s in self.shapes):
            raise ConfigError(f"scene shapes need at least two distinct names from {SHAPES}, got {self.shapes}")
        sizes = [s.name for s in self.sizes]
        if not sizes or len(set(sizes)) != len(sizes):
            raise ConfigError(f"scene sizes need distinct names, got {sizes}")
        ordered = sorted(self.sizes, key=lambda s: s.radius[0])
        for a, b in zip(ordered, ordered[1:]):
            if a.radius[1] >= b.radius[0]:
                raise ConfigError(f"size classes {a.name!r} and {b.name!r} overlap; their radius ranges must be disjoint")
        _range("background_value", self.background_value, 0.0, 1.0)
        _range("background_saturation", self.background_saturation, 0.0, 1.0)

    def colour(self, name: str) -> Colour:
        for c in self.colours:
            if c.name == name:
                return c
        raise KeyError(name)


@dataclass(frozen=True)
class SplitSettings:
    """The compositional train/test split.

    ``heldout_pairs``: (colour, shape) combinations that never occur in the
    training split, at any frame; each test item is built around an object with
    such a combination. ``None`` holds out one shape per colour, colour i with
    shape ``i mod len(shapes)``: a fixed choice that does not depend on the seed,
    so datasets made with different seeds share their held-out pairs.
    ``test_fraction``: share of videos and of images that go to the test split.
    """

    test_fraction: float = 0.1
    heldout_pairs: tuple[tuple[str, str], ...] | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.test_fraction < 1.0:
            raise ConfigError(f"test_fraction must lie in [0, 1), got {self.test_fraction!r}")


@dataclass(frozen=True)
class TaskSettings:
    """How many training samples of each task one video or image yields, and their options.

    ``subclip_prob``: chance that a video sample uses a sub-range of the video
    as its ``meta.split`` (always containing the sample's event) instead of the
    whole video. ``box_stride``: keep every n-th sampled frame in the per-frame
    box lists of STVG, SVG and ELC answers (1 keeps every sampled frame).
    """

    tvg: int = 1
    tr: int = 1
    dvc: int = 1
    stvg: int = 1
    svg: int = 1
    elc: int = 1
    video_caption: int = 1
    rec: int = 1
    reg: int = 1
    dgc: int = 1
    image_caption: int = 1
    subclip_prob: float = 0.25
    box_stride: int = 1

    def __post_init__(self) -> None:
        for name in VIDEO_TASKS + IMAGE_TASKS:
            v = getattr(self, name)
            if not isinstance(v, int) or not 0 <= v <= 8:
                raise ConfigError(f"tasks.{name} (samples per item) must be an integer in 0..8, got {v!r}")
        _prob("tasks.subclip_prob", self.subclip_prob)
        if not isinstance(self.box_stride, int) or self.box_stride < 1:
            raise ConfigError(f"tasks.box_stride must be an integer >= 1, got {self.box_stride!r}")


#: Sample kinds built from videos and from images, in file order.
VIDEO_TASKS = ("tvg", "tr", "dvc", "stvg", "svg", "elc", "video_caption")
IMAGE_TASKS = ("rec", "reg", "dgc", "image_caption")


@dataclass(frozen=True)
class SynthConfig:
    """Everything that decides the content of an ST-Synth dataset.

    Two runs with equal configs write byte-identical annotation files, whatever
    the number of worker processes (which is therefore not part of this).
    """

    seed: int = 0
    num_videos: int = 1000
    num_images: int = 1000
    video: VideoSettings = field(default_factory=VideoSettings)
    image: ImageSettings = field(default_factory=ImageSettings)
    scene: SceneSettings = field(default_factory=SceneSettings)
    difficulty: Difficulty = field(default_factory=lambda: DIFFICULTIES["normal"])
    split: SplitSettings = field(default_factory=SplitSettings)
    tasks: TaskSettings = field(default_factory=TaskSettings)

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        for name in ("num_videos", "num_images"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise ConfigError(f"{name} must be a non-negative integer, got {v!r}")
        if self.num_videos + self.num_images == 0:
            raise ConfigError("nothing to generate: num_videos and num_images are both 0")
        self._check_sizes()
        self._check_vocabulary()
        self._check_events()

    def _check_sizes(self) -> None:
        smallest = min(s.radius[0] for s in self.scene.sizes) * self.difficulty.size_scale
        largest = max(s.radius[1] for s in self.scene.sizes) * self.difficulty.size_scale
        for what, w, h in (("video", self.video.width, self.video.height), ("image", self.image.width, self.image.height)):
            if smallest * min(w, h) < MIN_RADIUS_PX:
                need = math.ceil(MIN_RADIUS_PX / smallest)
                raise ConfigError(
                    f"{what} frames of {w}x{h} are too small for the smallest objects "
                    f"(radius {smallest * min(w, h):.1f} px < {MIN_RADIUS_PX} px); use min(width, height) >= {need} "
                    f"or a larger size_scale"
                )
            if largest * 2 > 0.6:
                raise ConfigError(f"the largest objects (radius {largest:.2f} of the frame) do not fit a {what} frame")

    def _check_vocabulary(self) -> None:
        d, s = self.difficulty, self.scene
        if s.unique_colours and len(s.colours) < d.max_objects + d.events[1]:
            raise ConfigError(
                f"unique_colours needs at least {d.max_objects + d.events[1]} colours "
                f"(objects plus colour changes) for difficulty {d.name!r}, got {len(s.colours)}"
            )
        if len(s.colours) * len(s.shapes) * len(s.sizes) < 2 * d.max_objects:
            raise ConfigError("the colour x shape x size vocabulary is too small for the number of objects per scene")
        from .split import heldout_pairs  # local: split.py imports this module

        held = heldout_pairs(self)
        for c in s.colours:
            if all((c.name, sh) in held for sh in s.shapes):
                raise ConfigError(f"every shape of colour {c.name!r} is held out; the training split would never show it")
        for sh in s.shapes:
            if all((c.name, sh) in held for c in s.colours):
                raise ConfigError(f"every colour of shape {sh!r} is held out; the training split would never show it")

    def _check_events(self) -> None:
        from .timeline import min_event_frames

        need = min_event_frames(self.video.num_frames, self.video.sample_frames)
        longest = self.difficulty.event_length[1] * self.video.num_frames
        if need > 0.5 * self.video.num_frames or longest < need:
            raise ConfigError(
                f"videos of {self.video.num_frames} frames sampled at T={self.video.sample_frames} are too short: an "
                f"event must last at least {need} frames to cover 3 sampled frames, and the longest events of "
                f"difficulty {self.difficulty.name!r} last {longest:.1f} frames"
            )

    def replace(self, **changes: Any) -> "SynthConfig":
        """A copy with top-level fields changed (``video=...``, ``seed=...``)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (tuples become lists), written into ``manifest.json``."""
        return _jsonable(asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


PRESETS: dict[str, SynthConfig] = {
    # Small and quick: unit tests, CPU smoke runs.
    "tiny": SynthConfig(
        num_videos=8,
        num_images=8,
        video=VideoSettings(width=128, height=96, num_frames=24, fps=8.0, sample_frames=24),
        image=ImageSettings(width=128, height=96),
        split=SplitSettings(test_fraction=0.25),
    ),
    # The release's sampling (T = 100) on 10-second clips.
    "standard": SynthConfig(),
    # The world of the embedded model ("tiny"): 96x96 frames (its input size, so nothing is
    # resampled), 6-second clips at 8 fps sampled at T = 16, whole-clip questions.
    "embedded": SynthConfig(
        num_videos=4000,
        num_images=8000,
        video=VideoSettings(width=96, height=96, num_frames=48, fps=8.0, sample_frames=16),
        image=ImageSettings(width=96, height=96),
        difficulty=DIFFICULTIES["embedded"],
        tasks=TaskSettings(subclip_prob=0.0),
    ),
}


def preset(name: str) -> SynthConfig:
    """The named preset; raises :class:`ConfigError` listing the names for an unknown one."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]


def difficulty(name: str) -> Difficulty:
    if name not in DIFFICULTIES:
        raise ConfigError(f"unknown difficulty {name!r}; choose one of {sorted(DIFFICULTIES)}")
    return DIFFICULTIES[name]
