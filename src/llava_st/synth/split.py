"""The compositional train/test split: (colour, shape) pairs the training split never shows.

The training split may not contain a held-out pair on any object at any frame
(colour changes included); every test item is built around an object whose
pair is held out, and the test questions ask about it. A model that scores
well on the test split therefore composes colour and shape it has only seen
apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .config import SynthConfig

Pair = tuple[str, str]


def heldout_pairs(config: "SynthConfig") -> frozenset[Pair]:
    """The held-out (colour, shape) pairs of a config.

    Without an explicit list: colour i is held out with shape ``i mod S``
    (S shapes), so each colour loses one shape and each shape at most
    ``ceil(C / S)`` colours. Example with the default 8 colours and 6 shapes:
    red square, orange circle, yellow triangle, green star, cyan ring, blue
    cross, purple square, white circle.
    """
    from .config import ConfigError

    colours = [c.name for c in config.scene.colours]
    shapes = list(config.scene.shapes)
    if config.split.heldout_pairs is None:
        return frozenset((c, shapes[i % len(shapes)]) for i, c in enumerate(colours))
    pairs = frozenset((str(c), str(s)) for c, s in config.split.heldout_pairs)
    for c, s in pairs:
        if c not in colours or s not in shapes:
            raise ConfigError(f"held-out pair ({c!r}, {s!r}) names a colour or shape that is not in the scene vocabulary")
    if not pairs:
        raise ConfigError("heldout_pairs is empty; give None for the default pairs")
    return pairs


def split_of(index: int, count: int, test_fraction: float) -> str:
    """``"train"`` or ``"test"`` for item ``index`` of ``count``: the last ``n_test`` items are test.

    ``n_test = round(count * test_fraction)``, at least 1 when the fraction is
    positive and there are two or more items. Example: 10 items at 0.25 ->
    items 0..7 train (round(2.5) = 2 test items), 8 and 9 test.
    """
    n_test = num_test(count, test_fraction)
    return "test" if index >= count - n_test else "train"


def num_test(count: int, test_fraction: float) -> int:
    n_test = int(round(count * test_fraction))
    if test_fraction > 0 and count >= 2:
        n_test = max(n_test, 1)
    return min(n_test, count)
