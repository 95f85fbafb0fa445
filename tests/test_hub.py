"""Models by Hugging Face Hub id, through the one resolver ``llava_st.zoo.model_path``.

Every test builds a Hub cache in a temporary folder, in the layout
``huggingface_hub`` reads (``models--org--name/refs/<ref>`` holding a commit,
``snapshots/<commit>/<file>`` linking to ``blobs/<sha256>``), and runs with
``HF_HUB_OFFLINE=1``, except the one that replaces ``snapshot_download`` by a
recorder: nothing touches the network.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import llava_st.zoo as zoo
from llava_st.cli import main
from llava_st.errors import ConfigError, ModelNotFoundError
from llava_st.zoo import model_path

SHA_MAIN = "a" * 40
SHA_V1 = "b" * 40


def add_snapshot(cache: Path, repo: str, source: Path, commit: str, refs: tuple[str, ...] = ()) -> Path:
    """Put the files of ``source`` into ``cache`` as the snapshot ``commit`` of ``repo``, with ``refs`` pointing to it."""
    storage = cache / ("models--" + repo.replace("/", "--"))
    snap = storage / "snapshots" / commit
    snap.mkdir(parents=True)
    (storage / "blobs").mkdir(exist_ok=True)
    for f in sorted(source.iterdir()):
        data = f.read_bytes()
        blob = storage / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        os.symlink(os.path.relpath(blob, snap), snap / f.name)
    (storage / "refs").mkdir(exist_ok=True)
    for ref in refs:
        (storage / "refs" / ref).write_text(commit)
    return snap


@pytest.fixture
def hub(tmp_path, tiny_model_dir, monkeypatch):
    """A cache holding ``org/tiny`` at ``main`` and ``v1``; offline; the library's default cache pointed at it."""
    import huggingface_hub.constants as constants

    cache = tmp_path / "hf-cache"
    main_snap = add_snapshot(cache, "org/tiny", tiny_model_dir, SHA_MAIN, ("main",))
    v1_snap = add_snapshot(cache, "org/tiny", tiny_model_dir, SHA_V1, ("v1",))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return {"cache": cache, "main": main_snap, "v1": v1_snap}


def test_hub_ids_resolve_in_the_cache(hub):
    assert model_path("org/tiny") == hub["main"]
    assert model_path("org/tiny@v1") == hub["v1"]
    assert model_path("org/tiny", revision="v1") == hub["v1"]
    assert model_path("org/tiny", revision=SHA_V1) == hub["v1"]  # a commit needs no ref
    assert model_path(f"org/tiny@{SHA_MAIN}", cache_dir=hub["cache"]) == hub["main"]
    assert (model_path("org/tiny") / "config.json").is_file()


def test_offline_misses_name_the_repository(hub, tmp_path):
    with pytest.raises(ModelNotFoundError, match=r"'org/missing' \(revision main\).*HF_HUB_OFFLINE") as err:
        model_path("org/missing")
    assert "no local folder 'org/missing'" in str(err.value) and str(hub["cache"]) in str(err.value)
    with pytest.raises(ModelNotFoundError, match=r"'org/tiny' \(revision v2\).*not \(completely\) in the cache"):
        model_path("org/tiny@v2")
    with pytest.raises(ModelNotFoundError, match="org/tiny"):
        model_path("org/tiny", cache_dir=tmp_path / "empty-cache")


def test_resolution_order_folder_then_shipped_then_hub(hub, tmp_path, tiny_model_dir, monkeypatch):
    # a local folder that looks like a Hub id wins
    local = tmp_path / "work" / "org" / "tiny"
    local.mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "work")
    assert model_path("org/tiny") == Path("org/tiny")
    with pytest.raises(ConfigError, match="revision='v1' applies to Hugging Face Hub ids only"):
        model_path("org/tiny", revision="v1")
    monkeypatch.chdir(tmp_path)
    # then a shipped model (WEIGHTS), then the Hub
    monkeypatch.setitem(zoo.WEIGHTS, "org/tiny", lambda: tiny_model_dir)
    assert model_path("org/tiny") == tiny_model_dir
    monkeypatch.delitem(zoo.WEIGHTS, "org/tiny")
    assert model_path("org/tiny") == hub["main"]
    # not a repository id at all: the message says what a model may be
    with pytest.raises(ModelNotFoundError, match="Hugging Face Hub repository id"):
        model_path("./no/such/folder")
    with pytest.raises(ModelNotFoundError, match="configuration without weights"):
        model_path("debug")
    with pytest.raises(ConfigError, match="give one"):
        model_path("org/tiny@v1", revision="main")
    with pytest.raises(ConfigError, match="nothing after '@'"):
        model_path("org/tiny@")


def test_online_resolution_asks_snapshot_download(tmp_path, monkeypatch, tiny_model_dir):
    import huggingface_hub
    from huggingface_hub.utils import RepositoryNotFoundError

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    calls = []

    def fake(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        if repo_id == "org/nope":
            err = RepositoryNotFoundError.__new__(RepositoryNotFoundError)  # its constructor wants an HTTP response
            Exception.__init__(err, "404 Client Error: Repository Not Found")
            raise err
        return str(tiny_model_dir)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    assert model_path("org/tiny@v1", cache_dir=tmp_path) == tiny_model_dir
    repo, kw = calls[0]
    assert repo == "org/tiny" and kw["revision"] == "v1" and kw["local_files_only"] is False
    assert kw["cache_dir"] == tmp_path and "*.bin" in kw["ignore_patterns"]
    with pytest.raises(ModelNotFoundError, match="the Hub has no Hugging Face Hub repository 'org/nope'"):
        model_path("org/nope")


def test_llava_st_and_processor_load_by_hub_id(hub, tiny_model_dir):
    import torch

    from llava_st import LlavaST
    from llava_st.processor import LlavaSTProcessor

    st = LlavaST.from_pretrained("org/tiny@v1")
    ref = LlavaST.from_pretrained(tiny_model_dir)
    assert st.config == ref.config
    for (name, a), (_, b) in zip(st.model.state_dict().items(), ref.model.state_dict().items()):
        assert torch.equal(a, b), name
    proc = LlavaSTProcessor.from_pretrained("org/tiny", revision=SHA_V1)
    assert proc.tokenizer.get_vocab() == ref.processor.tokenizer.get_vocab()
    from llava_st.model import LlavaSTModel

    bare = LlavaSTModel.from_pretrained("org/tiny", revision=SHA_V1)
    for (name, a), (_, b) in zip(bare.state_dict().items(), ref.model.state_dict().items()):
        assert torch.equal(a, b), name


def test_cli_model_option_takes_a_hub_id(hub, tmp_path, capsys):
    image = tmp_path / "photo.png"
    Image.fromarray(np.full((40, 80, 3), 90, dtype=np.uint8)).save(image)
    code = main(["ask", "--model", "org/tiny@v1", "--image", str(image), "--max-new-tokens", "2", "--json", "--quiet", "What?"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert json.loads(out.out)["media"]["kind"] == "image"
    code = main(["ask", "--model", "org/missing", "--image", str(image), "--quiet", "What?"])
    assert code == 2 and "org/missing" in capsys.readouterr().err
