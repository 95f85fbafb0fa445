"""Fixtures of the server tests: the tiny random model, a media root with good and bad files, clients.

Every client made by :func:`make_client` writes uploads to its own folder and
checks, when it closes, that no temporary file is left there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import write_test_video

@pytest.fixture(scope="session")
def st(tiny_model_dir):
    from llava_st.infer import LlavaST

    return LlavaST.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="session")
def media_root(tmp_path_factory) -> Path:
    """clip.mp4 (30 frames, 10 fps, 64x48), photo.png (80x40), the same bytes under misleading names,
    corrupt files, a text file, a folder, and a link leading outside the root."""
    base = tmp_path_factory.mktemp("serve-media")
    root = base / "root"
    root.mkdir()
    video = write_test_video(root / "clip.mp4")
    image = root / "photo.png"
    Image.fromarray(np.tile(np.linspace(0, 250, 80, dtype=np.uint8)[None, :, None], (40, 1, 3))).save(image)
    shutil.copy(image, root / "image_named.mp4")  # a PNG called .mp4
    shutil.copy(video, root / "video_named.png")  # an MP4 called .png
    data = image.read_bytes()
    (root / "broken.png").write_bytes(data[: len(data) // 2])  # a PNG cut in half
    data = video.read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (root / "notes.txt").write_text("this is not a video\n" * 10)
    (root / "empty.mp4").write_bytes(b"")
    (root / "sub").mkdir()
    shutil.copy(image, root / "sub" / "inner.png")
    secret = base / "secret.png"
    shutil.copy(image, secret)
    os.symlink(secret, root / "escape.png")
    return root


@pytest.fixture
def make_client(st, tmp_path):
    """``make_client(**settings) -> TestClient`` (a context manager): a server on the tiny model
    with uploads in a folder checked to be empty afterwards; ``model=`` replaces the model."""
    from fastapi.testclient import TestClient

    from llava_st.serve import Limits, ServerSettings, create_app

    @contextlib.contextmanager
    def make(model=None, limits: dict | None = None, **settings):
        uploads = tmp_path / f"uploads-{len(list(tmp_path.iterdir()))}"
        uploads.mkdir()
        settings.setdefault("default_max_new_tokens", 6)
        app = create_app(model or st, ServerSettings(limits=Limits(**(limits or {})), upload_dir=uploads, **settings))
        with TestClient(app) as client:
            client.uploads = uploads
            yield client
        left = sorted(p.name for p in uploads.iterdir())
        assert not left, f"temporary upload files left behind: {left}"

    return make
