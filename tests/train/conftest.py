"""Fixtures of the training tests: a tiny model config and training batches built from ids.

The batches are written token by token (no tokenizer or processor), in the
layout the processor produces: visual runs of exactly the model's slot
counts, coordinate placeholders with their values, labels on the answer
only, right padding.
"""

from __future__ import annotations

import math

import pytest
import torch

from llava_st.protocol.tokens import IGNORE_INDEX
from llava_st.zoo import debug


@pytest.fixture
def debug_config():
    """The ``debug`` zoo config: 9x9 patch grid, 12 frames (fast run 12, slow run 18), V = 529."""
    return debug()


def _text(gen: torch.Generator, n: int, vocab: int) -> list[int]:
    return torch.randint(0, vocab, (n,), generator=gen).tolist()


def build_samples(config, seed: int = 0) -> list[dict]:
    """Two training samples: an image with a height input and a box answer, a 12-frame video
    with time and width inputs and a span + width answer. Each: ``ids``, ``labels``, ``values``
    (``[L]`` each), ``pixels``, ``modality``; ``prompt_len`` = where the answer starts."""
    ids = config.token_ids
    gen = torch.Generator().manual_seed(seed)
    text_vocab = ids.im_start - 3  # ordinary text ids lie below the chat and added tokens
    px = config.vision.image_size
    nan = math.nan

    def sample(prompt: list[tuple[int, float]], answer: list[tuple[int, float]], pixels, modality):
        seq = prompt + answer
        return {
            "ids": torch.tensor([t for t, _ in seq], dtype=torch.long),
            "values": torch.tensor([v for _, v in seq], dtype=torch.float64),
            "labels": torch.tensor([IGNORE_INDEX] * len(prompt) + [t for t, _ in answer], dtype=torch.long),
            "pixels": pixels,
            "modality": modality,
            "prompt_len": len(prompt),
        }

    def plain(n):
        return [(t, nan) for t in _text(gen, n, text_vocab)]

    image_run = [(ids.im_start, nan)] + [(ids.im_patch, nan)] * (config.image_token_count - 2) + [(ids.im_end, nan)]
    image = sample(
        plain(4) + image_run + plain(3) + [(ids.height_input, 0.35)] + plain(2),
        plain(3) + [(ids.width_output, 0.312), (ids.height_output, 0.25), (ids.width_output, 0.5), (ids.height_output, 0.75)]
        + plain(2) + [(ids.eos, nan)],
        torch.randn(1, 3, px, px, generator=gen),
        "image",
    )
    frames = config.num_frames
    fast = config.video_fast_token_count(frames)
    slow = config.video_slow_token_count(frames)
    video_run = (
        [(ids.vid_start, nan)] + [(ids.vid_patch, nan)] * (fast - 2) + [(ids.vid_end, nan)]
        + [(ids.slow_vid_start, nan)] + [(ids.vid_patch, nan)] * (slow - 2) + [(ids.slow_vid_end, nan)]
    )
    video = sample(
        plain(3) + video_run + plain(2) + [(ids.temp_input, 0.2), (ids.width_input, 0.6)] + plain(2),
        plain(2) + [(ids.temp_output, 0.1), (ids.temp_output, 0.9)] + plain(2) + [(ids.width_output, 0.0)]
        + [(ids.eos, nan)],
        torch.randn(frames, 3, px, px, generator=gen),
        "video",
    )
    return [image, video]


def collate(config, samples: list[dict]) -> dict:
    """Right-padded training batch in the processor's keys."""
    length = max(len(s["ids"]) for s in samples)
    b = len(samples)
    pad = config.token_ids.pad if config.token_ids.pad is not None else 0
    batch = {
        "input_ids": torch.full((b, length), pad, dtype=torch.long),
        "attention_mask": torch.zeros((b, length), dtype=torch.long),
        "coord_values": torch.full((b, length), math.nan, dtype=torch.float64),
        "labels": torch.full((b, length), IGNORE_INDEX, dtype=torch.long),
        "pixel_values": [s["pixels"] for s in samples],
        "modalities": [s["modality"] for s in samples],
    }
    for row, s in enumerate(samples):
        n = len(s["ids"])
        batch["input_ids"][row, :n] = s["ids"]
        batch["attention_mask"][row, :n] = 1
        batch["coord_values"][row, :n] = s["values"]
        batch["labels"][row, :n] = s["labels"]
    return batch


def prompt_batch(sample: dict) -> dict:
    """The prompt of one sample (no answer, no padding), for generation."""
    n = sample["prompt_len"]
    return {
        "input_ids": sample["ids"][None, :n],
        "coord_values": sample["values"][None, :n],
        "pixel_values": [sample["pixels"]],
        "modalities": [sample["modality"]],
    }


@pytest.fixture
def train_batch(debug_config):
    return collate(debug_config, build_samples(debug_config))


@pytest.fixture
def samples(debug_config):
    """:func:`build_samples` for the debug config (an image sample and a video sample)."""
    return build_samples(debug_config)


@pytest.fixture
def batch_tools():
    """The batch helpers of this file, for tests that build their own batches."""
    return {"build_samples": build_samples, "collate": collate, "prompt_batch": prompt_batch}


# ------------------------------------------------------------------ end-to-end training fixtures
# Training runs use a tiny ST-Synth set made here, the ``debug`` zoo config sized to the
# tiny tokenizer of tests/conftest.py, and one CPU thread (tiny matrices gain nothing from
# threads, and threads fighting other processes for two cores made steps 30x slower).

import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TINY_RECIPES = REPO / "recipes" / "tiny"


def synth_config(seed: int = 5):
    """4 videos (24 frames, 16 sampled per sample) and 4 images of the tiny preset, two samples per task."""
    from llava_st.synth import PRESETS, SplitSettings, TaskSettings

    base = PRESETS["tiny"]
    return base.replace(
        seed=seed,
        num_videos=4,
        num_images=4,
        video=replace(base.video, sample_frames=16),
        split=SplitSettings(test_fraction=0.25),
        tasks=TaskSettings(tvg=2, stvg=1, elc=1, svg=1, rec=2, reg=2, subclip_prob=0.5),
    )


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory) -> Path:
    """An ST-Synth dataset folder with its stage1/2/3 mix YAMLs."""
    from llava_st.synth import generate

    out = tmp_path_factory.mktemp("train-synth") / "data"
    generate(synth_config(), out, workers=1, preview=False)
    return out


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> Path:
    """A folder with the tiny release-layout tokenizer (and a tiny model, unused by zoo recipes)."""
    from conftest import make_tiny_model_dir

    return make_tiny_model_dir(tmp_path_factory.mktemp("train-tok"))


@pytest.fixture
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_overrides(tokenizer_dir: Path, mix: Path, out: Path, **more) -> list[str]:
    """``key=value`` overrides that point a tiny recipe at test data and a test folder."""
    items = {
        "data.mix": str(mix),
        "output.dir": str(out),
        "output.log_every": 1,
        **more,
    }
    return [f"{k}={v}" for k, v in items.items()] + ([f"model.tokenizer={tokenizer_dir}"] if "model.path" not in more else [])


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    return env


def run_cli(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """``python -m llava_st ARGS`` in a fresh process (one thread)."""
    return subprocess.run(
        [sys.executable, "-m", "llava_st", *args], capture_output=True, text=True, env=subprocess_env(), cwd=REPO,
        timeout=300, **kwargs,
    )


def final_weights(folder: Path) -> dict:
    """The safetensors tensors of a model folder (release keys)."""
    from safetensors.torch import load_file

    out = {}
    for f in sorted(Path(folder).glob("model*.safetensors")):
        out.update(load_file(str(f)))
    return out


@pytest.fixture(scope="session")
def train_tools():
    """Helpers of this file for the end-to-end tests."""
    return {
        "overrides": tiny_overrides,
        "run_cli": run_cli,
        "env": subprocess_env,
        "weights": final_weights,
        "recipes": TINY_RECIPES,
        "repo": REPO,
    }
