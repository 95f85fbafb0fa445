"""ST-Synth: a procedural spatial-temporal dataset for every LLaVA-ST task, with exact ground truth.

Videos (H.264 MP4) and images (PNG) of shapes that move, appear, disappear,
change colour, enter and leave, with distractors, occlusion and camera pans;
boxes are read from the rendered pixels. The generator writes training samples
of all nine tasks in the release's training format, evaluation files in the
formats of RefCOCO, Charades-STA and ST-Align, and the three stages' training
mixes. A compositional split holds (colour, shape) pairs out of training.

Example::

    from llava_st.synth import PRESETS, generate
    summary = generate(PRESETS["tiny"].replace(seed=3), "data/st-synth-tiny", workers=2)
    print(summary.format())
"""

from .config import (
    DIFFICULTIES,
    IMAGE_TASKS,
    PRESETS,
    VIDEO_TASKS,
    ConfigError,
    Difficulty,
    ImageSettings,
    SceneSettings,
    SplitSettings,
    SynthConfig,
    TaskSettings,
    VideoSettings,
)
from .item import GenerationError
from .preview import make_preview
from .split import heldout_pairs
from .vocab import Colour, SizeClass
from .writer import GenerationSummary, OutputExistsError, generate

__all__ = [
    "DIFFICULTIES",
    "IMAGE_TASKS",
    "PRESETS",
    "VIDEO_TASKS",
    "Colour",
    "ConfigError",
    "Difficulty",
    "GenerationError",
    "GenerationSummary",
    "ImageSettings",
    "OutputExistsError",
    "SceneSettings",
    "SizeClass",
    "SplitSettings",
    "SynthConfig",
    "TaskSettings",
    "VideoSettings",
    "generate",
    "heldout_pairs",
    "make_preview",
]
