"""Random scenes: which objects, where they go, what happens to them.

A scene is built around a *target* object. *Distractors* copy the target and
change exactly one attribute (colour, shape or size), so only a full referring
phrase picks the target; *extras* have free attributes; an optional large
*occluder* sweeps over the others. No two objects ever share all three
attributes (colour changes included), so every object has a unique phrase.

Compositional split: in the training split no object shows a held-out
(colour, shape) pair on any frame; in the test split the target has a held-out
pair (and, in videos, the first event happens to it).

Sampling may fail for a particular draw (an object that cannot be placed);
it then raises :class:`SceneError` and the caller draws again from the same
random stream, so results stay deterministic.
"""

from __future__ import annotations

import math

import numpy as np

from . import motion
from .background import make_background
from .config import SynthConfig
from .language import assign_phrases, direction_words, event_caption
from .scene import EVENT_KINDS, Scene, SceneEvent, SceneObject
from .timeline import min_event_frames

SIDES = ("left", "right", "top", "bottom")
#: Base motion of objects without a motion event, and its probabilities.
BASE_MOTIONS = ("static", "linear", "bouncing", "circular")
BASE_MOTION_P = (0.35, 0.15, 0.35, 0.15)


class SceneError(RuntimeError):
    """This random draw cannot be turned into a valid scene; draw again."""


class _Vocabulary:
    """Attribute bookkeeping for one scene: held-out pairs, triples in use, colours in use."""

    def __init__(self, config: SynthConfig, split: str, heldout: frozenset[tuple[str, str]]):
        self.colours = [c.name for c in config.scene.colours]
        self.shapes = list(config.scene.shapes)
        self.sizes = [s.name for s in config.scene.sizes]
        self.unique_colours = config.scene.unique_colours
        self.split = split
        self.heldout = heldout
        self.triples: set[tuple[str, str, str]] = set()
        self.colours_used: set[str] = set()

    def allowed(self, colour: str, shape: str) -> bool:
        """May an object show this pair in this split (the target is checked separately)?"""
        return self.split != "train" or (colour, shape) not in self.heldout

    def free(self, size: str, colour: str, shape: str) -> bool:
        if (size, colour, shape) in self.triples:
            return False
        if self.unique_colours and colour in self.colours_used:
            return False
        return self.allowed(colour, shape)

    def take(self, size: str, colour: str, shape: str) -> None:
        self.triples.add((size, colour, shape))
        self.colours_used.add(colour)


def _choice(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


def _attributes(
    rng: np.random.Generator, config: SynthConfig, vocab: _Vocabulary, n_distractors: int, n_extras: int, occluder: bool
) -> list[tuple[str, str, str, str]]:
    """``(role, shape, colour, size)`` of every object, the target first."""
    if vocab.split == "test":
        pairs = sorted(vocab.heldout)
    else:
        pairs = [(c, s) for c in vocab.colours for s in vocab.shapes if (c, s) not in vocab.heldout]
    colour, shape = _choice(rng, pairs)
    size = _choice(rng, vocab.sizes)
    out = [("target", shape, colour, size)]
    vocab.take(size, colour, shape)

    for _ in range(n_distractors):
        # with unique colours only a colour change keeps colours distinct
        attrs = ["colour"] if vocab.unique_colours else ["shape", "size", "colour"]
        for _try in range(40):
            which = _choice(rng, attrs)
            s, c, z = shape, colour, size
            if which == "shape":
                s = _choice(rng, [v for v in vocab.shapes if v != shape])
            elif which == "colour":
                c = _choice(rng, [v for v in vocab.colours if v != colour])
            else:
                z = _choice(rng, [v for v in vocab.sizes if v != size] or [size])
            if vocab.free(z, c, s):
                vocab.take(z, c, s)
                out.append(("distractor", s, c, z))
                break
        else:
            raise SceneError("no free attribute combination for a distractor")

    roles = ["extra"] * n_extras + (["occluder"] if occluder else [])
    largest = max(config.scene.sizes, key=lambda s: s.radius[0]).name
    for role in roles:
        for _try in range(60):
            s, c = _choice(rng, vocab.shapes), _choice(rng, vocab.colours)
            z = largest if role == "occluder" else _choice(rng, vocab.sizes)
            if vocab.free(z, c, s):
                vocab.take(z, c, s)
                out.append((role, s, c, z))
                break
        else:
            raise SceneError(f"no free attribute combination for an {role} object")
    return out


def _radius(rng: np.random.Generator, config: SynthConfig, size: str, width: int, height: int) -> float:
    cls = next(s for s in config.scene.sizes if s.name == size)
    return float(rng.uniform(*cls.radius)) * min(width, height) * config.difficulty.size_scale


def _camera(rng: np.random.Generator, config: SynthConfig, F: int, W: int, H: int) -> tuple[np.ndarray, str | None]:
    """Even integer camera offsets ``[F, 2]`` (all within ``[0, pan]``) and the pan's direction words."""
    d = config.difficulty
    if F == 1 or rng.random() >= d.pan_prob:
        return np.zeros((F, 2), dtype=np.int64), None
    extent = float(rng.uniform(*d.pan_extent))
    axis = _choice(rng, ("x", "y", "xy"))
    sx, sy = (1 if rng.random() < 0.5 else -1), (1 if rng.random() < 0.5 else -1)
    px = int(round(extent * W)) if "x" in axis else 0
    py = int(round(extent * H)) if "y" in axis else 0
    if px == 0 and py == 0:
        return np.zeros((F, 2), dtype=np.int64), None
    t = np.arange(F) / (F - 1)
    # even offsets keep the 4:2:0 chroma grid of the background aligned with the frame
    px, py = 2 * (px // 2), 2 * (py // 2)
    cx = 2 * np.rint(t * px / 2).astype(np.int64)
    cy = 2 * np.rint(t * py / 2).astype(np.int64)
    if sx < 0:
        cx = px - cx
    if sy < 0:
        cy = py - cy
    words = direction_words(sx * px, sy * py)
    return np.stack([cx, cy], 1), words


def _safe_box(camera: np.ndarray, r: float, W: int, H: int) -> tuple[np.ndarray, np.ndarray]:
    """World-coordinate box where a centre keeps a shape of radius ``r`` fully in view on every frame."""
    lo = camera.max(0).astype(np.float64) + r + 1.0
    hi = np.array([W - 1, H - 1], dtype=np.float64) + camera.min(0) - r - 1.0
    if np.any(hi <= lo):
        raise SceneError("an object is too large for the visible area")
    return lo, hi


def _unit(rng: np.random.Generator) -> np.ndarray:
    a = float(rng.uniform(0, 2 * np.pi))
    return np.array([math.cos(a), math.sin(a)])


def _speed(rng: np.random.Generator, config: SynthConfig, W: int, H: int) -> float:
    return float(rng.uniform(*config.difficulty.speed)) * min(W, H)


def _profile_path(rng, speeds_fn, config, F, W, H, lo, hi, start, end) -> tuple[np.ndarray, np.ndarray]:
    """A path following a speed profile, fitted inside ``[lo, hi]`` (halving the speed when too long)."""
    v = _speed(rng, config, W, H)
    direction = _unit(rng)
    for _ in range(6):
        rel = motion.path_from_speeds(direction, speeds_fn(F, start, end, v))
        path = motion.fit_path(rng, rel, lo, hi)
        if path is not None and np.linalg.norm(rel[-1]) >= 2.0:
            return path, rel[-1] - rel[0]
        v *= 0.5
    raise SceneError("a motion path does not fit the frame")


def _base_motion(rng, config, F, W, H, lo, hi, kind: str) -> np.ndarray:
    if kind == "static" or F == 1:
        return motion.static(lo + rng.random(2) * (hi - lo), F)
    v = _speed(rng, config, W, H)
    if kind == "linear":
        for _ in range(6):
            path = motion.fit_path(rng, motion.linear(np.zeros(2), v * _unit(rng), F), lo, hi)
            if path is not None:
                return path
            v *= 0.5
        raise SceneError("a linear path does not fit the frame")
    if kind == "bouncing":
        return motion.bouncing(lo + rng.random(2) * (hi - lo), v * _unit(rng), lo, hi, F)
    if kind == "circular":
        room = float(np.min(hi - lo)) / 2
        R = min(float(rng.uniform(0.05, 0.15)) * min(W, H), 0.9 * room)
        if R < 2:
            return motion.static(lo + rng.random(2) * (hi - lo), F)
        c = lo + R + rng.random(2) * (hi - lo - 2 * R)
        omega = (v / R) * (1 if rng.random() < 0.5 else -1)
        return motion.circular(c, R, omega, float(rng.uniform(0, 2 * np.pi)), F)
    raise ValueError(f"unknown motion {kind!r}")


def _border_path(rng, F, W, H, r, v, v_max, side, entering: bool) -> np.ndarray | None:
    """Screen path ``[F, 2]`` crossing the ``side`` border, inward or outward.

    ``u`` is the centre's distance from the border (positive inside). Entering:
    ``u`` grows from well outside to a resting depth; leaving: it rests at a
    depth, then falls to well outside. The speed is ``v`` px per frame, raised
    when needed so the whole crossing fits in the video, but never above
    ``v_max``. Returns None when no speed works.
    """
    depth = r + 2.0 + float(rng.uniform(0.05, 0.25)) * min(W, H)
    across = W if side in ("left", "right") else H
    along = H if side in ("left", "right") else W
    if depth + r + 2 > across:
        return None
    travel = depth + r + 2.0  # from fully outside (u = -r - 2) to resting depth
    v = max(v, travel / (F - 6))
    if v > v_max:
        return None
    frames = int(math.ceil(travel / v))
    if frames + 3 > F - 2:
        return None
    f = np.arange(F, dtype=np.float64)
    if entering:
        f0 = int(rng.integers(0, F - 2 - frames))  # frame at which u = -r - 2
        u = np.minimum(depth, -r - 2.0 + v * (f - f0))
    else:
        f0 = int(rng.integers(1, F - 2 - frames))  # frame at which it leaves its resting depth
        u = np.maximum(-r - 2.0, depth - v * np.maximum(0.0, f - f0))
    t = float(rng.uniform(r + 1, along - r - 2))
    if side == "left":
        xy = np.stack([u, np.full(F, t)], 1)
    elif side == "right":
        xy = np.stack([W - 1 - u, np.full(F, t)], 1)
    elif side == "top":
        xy = np.stack([np.full(F, t), u], 1)
    else:
        xy = np.stack([np.full(F, t), H - 1 - u], 1)
    return xy


def _event_window(rng: np.random.Generator, config: SynthConfig, F: int) -> tuple[int, int]:
    shortest = min_event_frames(F, config.video.sample_frames)
    lo_len, hi_len = config.difficulty.event_length
    length = int(round(float(rng.uniform(lo_len, hi_len)) * F))
    length = min(max(length, shortest + 1), F - 4)
    start = int(rng.integers(1, F - 2 - length))
    return start, start + length


def _alt_colour(rng, vocab: _Vocabulary, obj: SceneObject) -> str | None:
    options = [c for c in vocab.colours if c != obj.colour and vocab.free(obj.size, c, obj.shape)]
    if not options:
        return None
    return _choice(rng, options)


def sample_scene(
    rng: np.random.Generator, config: SynthConfig, media: str, split: str, heldout: frozenset[tuple[str, str]]
) -> tuple[Scene, str | None]:
    """Draw one video or image scene and the camera pan's direction words (None without a pan).

    Event spans of the returned scene are as planned; :func:`llava_st.synth.truth.finalise_events`
    reads the visibility-defined ones from the rendered pixels.
    """
    if media == "video":
        W, H, F, fps = config.video.width, config.video.height, config.video.num_frames, config.video.fps
    elif media == "image":
        W, H, F, fps = config.image.width, config.image.height, 1, 1.0
    else:
        raise ValueError(f"media must be 'video' or 'image', got {media!r}")
    d = config.difficulty
    vocab = _Vocabulary(config, split, heldout)
    n_distractors = int(rng.integers(d.distractors[0], d.distractors[1] + 1))
    n_extras = int(rng.integers(d.extra_objects[0], d.extra_objects[1] + 1))
    occluder = media == "video" and rng.random() < d.occluder_prob
    attributes = _attributes(rng, config, vocab, n_distractors, n_extras, occluder)

    camera, pan = _camera(rng, config, F, W, H)
    bg_w, bg_h = W + int(camera[:, 0].max()), H + int(camera[:, 1].max())
    background = make_background(rng, _choice(rng, d.backgrounds), bg_w, bg_h, config.scene)
    palette_names = tuple(c.name for c in config.scene.colours)
    palette = tuple(c.rgb for c in config.scene.colours)

    objects: list[SceneObject] = []
    z_order = rng.permutation(len(attributes))
    for index, (role, shape, colour, size) in enumerate(attributes):
        r = _radius(rng, config, size, W, H)
        lo, hi = _safe_box(camera, r, W, H)
        kind = "bouncing" if role == "occluder" else (BASE_MOTIONS[int(rng.choice(4, p=BASE_MOTION_P))] if F > 1 else "static")
        centre = _base_motion(rng, config, F, W, H, lo, hi, kind)
        spin = float(rng.uniform(0.01, 0.05)) * (1 if rng.random() < 0.5 else -1) if (F > 1 and rng.random() < 0.4) else 0.0
        angle = float(rng.uniform(0, 2 * np.pi)) + spin * np.arange(F)
        objects.append(
            SceneObject(
                index=index,
                shape=shape,
                colour=colour,
                size=size,
                radius=r,
                role=role,
                z=int(z_order[index]) if role != "occluder" else len(attributes),
                motion=kind,
                centre=centre,
                angle=angle,
                scale=np.ones(F),
                colour_track=np.full(F, palette_names.index(colour), dtype=np.int64),
            )
        )
    if media == "image":
        _spread_out(rng, objects, camera, W, H)

    events: list[SceneEvent] = []
    if media == "video":
        events = _plan_events(rng, config, vocab, objects, camera, F, W, H, split)

    scene = Scene(
        media=media,
        width=W,
        height=H,
        num_frames=F,
        fps=fps,
        split=split,
        background=background,
        camera=camera,
        objects=objects,
        events=events,
        palette=palette,
        palette_names=palette_names,
    )
    try:
        assign_phrases(scene, rng)
    except ValueError as exc:
        raise SceneError(str(exc)) from exc
    for ev in events:
        ev.caption = event_caption(ev, objects[ev.object], rng)
    return scene, pan


def _spread_out(rng: np.random.Generator, objects: list[SceneObject], camera: np.ndarray, W: int, H: int) -> None:
    """Re-place still objects so that centres keep some distance (occlusion stays partial most of the time)."""
    placed: list[tuple[np.ndarray, float]] = []
    for obj in objects:
        lo, hi = _safe_box(camera, obj.radius, W, H)
        best, best_gap = None, -np.inf
        for _ in range(25):
            p = lo + rng.random(2) * (hi - lo)
            gap = min((float(np.linalg.norm(p - q)) - 0.8 * (obj.radius + rq) for q, rq in placed), default=np.inf)
            if gap > best_gap:
                best, best_gap = p, gap
            if gap >= 0:
                break
        assert best is not None
        obj.centre = motion.static(best, obj.centre.shape[0])
        placed.append((best, obj.radius))


def _plan_events(rng, config, vocab, objects, camera, F, W, H, split) -> list[SceneEvent]:
    d = config.difficulty
    candidates = [o for o in objects if o.role != "occluder"]
    n_events = min(int(rng.integers(d.events[0], d.events[1] + 1)), len(candidates))
    order = [int(i) for i in rng.permutation(len(candidates))]
    chosen = [candidates[i] for i in order][:n_events]
    if split == "test":
        target = objects[0]
        chosen = [target] + [o for o in chosen if o is not target][: n_events - 1]
    events = []
    kinds = list(EVENT_KINDS)
    for obj in chosen:
        # some kinds cannot happen to some objects (no free colour, no room to cross): try the others
        for k in rng.permutation(len(kinds)):
            try:
                events.append(_apply_event(rng, config, vocab, obj, kinds[int(k)], camera, F, W, H))
                break
            except SceneError:
                continue
        else:
            raise SceneError(f"no event kind fits object {obj.index}")
    return events


def _apply_event(rng, config, vocab, obj: SceneObject, kind: str, camera, F, W, H) -> SceneEvent:
    """Rewrite ``obj``'s per-frame state so that the event happens; return the planned event."""
    lo, hi = _safe_box(camera, obj.radius, W, H)
    start, end = _event_window(rng, config, F)
    f = np.arange(F, dtype=np.float64)
    detail: dict[str, str] = {}
    if kind in ("appear", "disappear"):
        obj.motion = "static"
        obj.centre = motion.static(lo + rng.random(2) * (hi - lo), F)
        ramp = 0.25 + 0.75 * (f - start) / (end - start)
        if kind == "appear":
            obj.scale = np.where(f < start, 0.0, np.minimum(ramp, 1.0))
        else:
            obj.scale = np.where(f > end, 0.0, np.where(f < start, 1.0, 1.25 - ramp))
    elif kind == "recolour":
        alt = _alt_colour(rng, vocab, obj)
        if alt is None:
            raise SceneError("no free colour for a colour change")
        vocab.take(obj.size, alt, obj.shape)
        obj.colour_track = obj.colour_track.copy()
        obj.colour_track[start : end + 1] = vocab.colours.index(alt)
        detail["colour"] = alt
    elif kind in ("move", "start_moving", "stop_moving"):
        profile = {"move": motion.move_profile, "start_moving": motion.start_profile, "stop_moving": motion.stop_profile}[kind]
        obj.centre, shift = _profile_path(rng, profile, config, F, W, H, lo, hi, start, end)
        obj.motion = kind
        detail["direction"] = direction_words(float(shift[0]), float(shift[1]))
    elif kind in ("enter", "leave"):
        side = _choice(rng, SIDES)
        # the crossing (about 2 r / v frames) must cover enough sampled frames
        v_max = 2 * obj.radius / (min_event_frames(F, config.video.sample_frames) + 1)
        v = min(_speed(rng, config, W, H), v_max)
        screen = _border_path(rng, F, W, H, obj.radius, v, v_max, side, entering=kind == "enter")
        if screen is None:
            raise SceneError("an object cannot cross the border within the video")
        obj.centre = screen + camera.astype(np.float64)
        obj.motion = kind
        detail["side"] = side
    else:  # pragma: no cover - kinds come from EVENT_KINDS
        raise ValueError(f"unknown event kind {kind!r}")
    return SceneEvent(kind=kind, object=obj.index, start=start, end=end, detail=detail)
