"""The static-cache decoder (lean step, compiled step) against transformers' eager path.

Every check compares with the eager decoder (transformers' Qwen2 forward with
a DynamicCache), an independent implementation of the same network: greedy
ids must be identical and logits equal to float rounding. The compiled
checks run torch.compile (inductor) on the CPU; they compile two small graphs
(about 20-40 s each on a 2-core machine) and check that a second call does
not compile again.
"""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
import torch

from conftest import left_pad
from llava_st.errors import ConfigError
from llava_st.model import LlavaSTModel
from llava_st.model.generate import EagerDecoder, select_decoder
from llava_st.model.static_decode import (
    MIN_CACHE_BUCKET, StaticDecoder, StaticKVCache, bucket_chunk, bucket_length, compile_available, decode_cache, static_support,
)
from llava_st.zoo import debug

DEVICE = os.environ.get("LLAVA_ST_TEST_DEVICE", "cpu")


def _model() -> LlavaSTModel:
    torch.manual_seed(0)
    return LlavaSTModel(debug(num_frames=12), attn_implementation="eager").eval()


def _sample(model: LlavaSTModel, modality: str | None, seed: int):
    """ids with text, a visual run (image or 12-frame video) and a time and a width placeholder."""
    ids, cfg = model.token_ids, model.config
    g = torch.Generator().manual_seed(seed)
    text = torch.randint(0, 400, (5,), generator=g).tolist()
    if modality == "image":
        run = [ids.im_start] + [ids.im_patch] * (cfg.image_token_count - 2) + [ids.im_end]
    elif modality == "video":
        f, s = cfg.video_fast_token_count(12), cfg.video_slow_token_count(12)
        run = ([ids.vid_start] + [ids.vid_patch] * (f - 2) + [ids.vid_end]
               + [ids.slow_vid_start] + [ids.vid_patch] * (s - 2) + [ids.slow_vid_end])
    else:
        run = []
    seq = text[:2] + run + text[2:] + [ids.temp_input, 17, ids.width_input, 9]
    values = torch.full((len(seq),), float("nan"), dtype=torch.float64)
    values[len(seq) - 4], values[len(seq) - 2] = 0.25, 0.7
    size = cfg.vision.image_size
    pix = None if modality is None else torch.randn(12 if modality == "video" else 1, 3, size, size, generator=g)
    return torch.tensor(seq), values, pix


def _batch(model: LlavaSTModel):
    samples = [_sample(model, "image", 11), _sample(model, None, 12), _sample(model, "video", 13)]
    ids, mask, vals = left_pad(samples, model.token_ids.pad)
    return ids, dict(attention_mask=mask, coord_values=vals, pixel_values=[s[2] for s in samples],
                     modalities=["image", None, "video"])


@pytest.fixture(scope="module")
def model() -> LlavaSTModel:
    return _model().to(DEVICE)


def test_buckets() -> None:
    assert [bucket_length(n) for n in (1, 256, 257, 384, 385, 513, 600, 1024, 1025, 3000)] == [
        256, 256, 384, 384, 512, 768, 768, 1024, 1536, 3072]
    assert [bucket_chunk(c) for c in (1, 2, 3, 4, 5, 9, 16)] == [1, 2, 4, 4, 8, 16, 16]
    assert MIN_CACHE_BUCKET == 256


@pytest.mark.parametrize("rows", ["one", "left-padded"])
def test_static_greedy_ids_equal_eager(model: LlavaSTModel, rows: str) -> None:
    ids, kw = _batch(model)
    if rows == "one":
        ids, kw = ids[2:, -int(kw["attention_mask"][2].sum()):], {k: v[2:] for k, v in kw.items()}
        kw["attention_mask"] = kw["attention_mask"][:, -ids.shape[1]:]
        kw["coord_values"] = kw["coord_values"][:, -ids.shape[1]:]
    common = dict(max_new_tokens=24, eos_token_ids=(), return_scores=True, **kw)
    eager = model.generate(ids, decoder="eager", **common)
    static = model.generate(ids, decoder="static", **common)
    assert eager.decoder == "eager" and static.decoder == "static"
    assert torch.equal(static.sequences, eager.sequences)
    torch.testing.assert_close(static.scores, eager.scores, rtol=0, atol=2e-5)
    assert static.model_calls == eager.model_calls == 23


@pytest.mark.parametrize("cache", ["large", "grows"])
def test_chunks_with_coordinate_ids_and_padded_slots_match_eager(model: LlavaSTModel, cache: str) -> None:
    """Feed the same chunks to both decoders: bin ids (fed back through E_in), text ids, chunks of
    several tokens with invalid (padded) slots in between, rows that feed nothing; with a cache
    that is too small, the decoder moves to a larger one on the way."""
    ids, kw = _batch(model)
    v = model.config.text.vocab_size
    embeds = model.embed_inputs(ids.to(model.device), kw["coord_values"], kw["pixel_values"], kw["modalities"])
    mask = kw["attention_mask"].to(model.device)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    eager, static = EagerDecoder(model), StaticDecoder(model, 3, ids.shape[1] + 32)
    if cache == "grows":
        static.cache = StaticKVCache.allocate(model, 3, ids.shape[1] + 2)
    with torch.no_grad():
        a, b = eager.prefill(embeds, mask, pos), static.prefill(embeds, mask, pos)
        torch.testing.assert_close(b, a, rtol=0, atol=1e-5)
        next_pos = pos[:, -1] + 1
        chunks = [
            ([[v + 3], [17], [v + 150]], [[1], [1], [1]]),                      # a time, a text and a height bin
            ([[v + 250, 5, 0], [9, 0, 0], [v + 99, v + 100, v + 299]], [[1, 1, 0], [1, 0, 0], [1, 1, 1]]),
            ([[0, 0], [v + 7, 12], [44, 0]], [[0, 0], [1, 1], [0, 1]]),         # row 0 feeds nothing
            ([[v], [v + 1], [v + 2]], [[1], [1], [1]]),
        ]
        for chunk, valid in chunks:
            chunk = torch.tensor(chunk, device=model.device)
            valid = torch.tensor(valid, dtype=torch.bool, device=model.device)
            positions = next_pos[:, None] + (valid.cumsum(1) - 1).clamp(min=0)
            a, b = eager.feed(chunk, valid, positions), static.feed(chunk, valid, positions)
            fed = valid.any(1)
            torch.testing.assert_close(b[fed], a[fed], rtol=0, atol=2e-5)
            next_pos = next_pos + valid.sum(1)
    assert static.model_calls == eager.model_calls == len(chunks)
    assert static.cache.capacity >= static.cache.length >= ids.shape[1] + 7


def test_auto_selection_and_fallback(model: LlavaSTModel) -> None:
    assert select_decoder(model, "eager") == "eager"
    assert select_decoder(model, "static") == "static"
    auto = select_decoder(model, "auto")
    assert auto == ("compiled" if model.device.type == "cuda" and compile_available(model.device) is None else "static")
    with pytest.raises(ConfigError, match="decoder must be one of"):
        select_decoder(model, "fast")
    # a language model the lean step does not implement stays on the eager path
    torch.manual_seed(0)
    cfg = debug()
    sliding = LlavaSTModel(replace(cfg, text=replace(cfg.text))).eval()
    sliding.language_model.config.layer_types = ["sliding_attention"] * cfg.text.num_hidden_layers
    assert "sliding_attention" in static_support(sliding)
    assert select_decoder(sliding, "auto") == "eager"
    with pytest.raises(ConfigError, match="cannot run this model"):
        select_decoder(sliding, "static")


def test_cache_buffers_are_reused_between_calls(model: LlavaSTModel) -> None:
    ids, kw = _batch(model)
    store = decode_cache(model)
    model.generate(ids, decoder="static", max_new_tokens=3, eos_token_ids=(), **kw)
    first = {k: id(c) for k, c in store.caches.items()}
    model.generate(ids, decoder="static", max_new_tokens=5, eos_token_ids=(), **kw)
    assert {k: id(c) for k, c in store.caches.items()} == first  # same bucket: same buffers
    # two decoders running at once never share buffers; closing hands the cache back
    a, b = StaticDecoder(model, 3, 40), StaticDecoder(model, 3, 40)
    assert a.cache is not b.cache and a.cache.in_use and b.cache.in_use
    b.close()
    c = StaticDecoder(model, 3, 40)
    assert c.cache is b.cache
    a.close(), c.close()


@pytest.mark.skipif(compile_available(torch.device(DEVICE)) is not None, reason="torch.compile is not available here")
def test_compiled_greedy_ids_equal_eager_and_compile_once_per_bucket(model: LlavaSTModel) -> None:
    ids, kw = _batch(model)
    common = dict(max_new_tokens=16, eos_token_ids=(), return_scores=True, **kw)
    eager = model.generate(ids, decoder="eager", **common)
    store = decode_cache(model)
    store.compiled.clear()
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    compiled = model.generate(ids, decoder="compiled", **common)
    assert compiled.decoder == "compiled"
    assert torch.equal(compiled.sequences, eager.sequences)
    torch.testing.assert_close(compiled.scores, eager.scores, rtol=0, atol=2e-5)
    assert len(store.compiled) == 1 and len(store.compile_seconds) == 1
    # batch 1, and a second call: a new bucket compiles once, the old one is reused
    one = {k: v[2:] for k, v in kw.items()}
    single = model.generate(ids[2:], decoder="compiled", max_new_tokens=16, eos_token_ids=(), **one)
    assert torch.equal(single.sequences[0], eager.sequences[2])
    again = model.generate(ids, decoder="compiled", **common)
    assert torch.equal(again.sequences, eager.sequences)
    assert len(store.compiled) == 2
    # one graph per bucket: the cache's filled length, which grows every step, is symbolic
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs == 2
    print("compile seconds per bucket:", {k: round(v, 1) for k, v in store.compile_seconds.items()})


def test_parity_model_static_equals_eager() -> None:
    """The tiny parity checkpoint (the authors' random model), when its fixtures are present."""
    from conftest import locate_parity_fixtures

    found = locate_parity_fixtures()
    if not found.found:
        pytest.skip(found.message)
    import numpy as np

    model = LlavaSTModel.from_pretrained(found.path / "model", device=DEVICE)
    ref = np.load(found.path / "image_rec" / "reference.npz")
    with np.load(found.path / "media" / "image_pixel_values.npz") as z:
        pix = torch.from_numpy(z[z.files[0]])
    ids = torch.from_numpy(ref["input_ids"])[None]
    kw = dict(pixel_values=[pix], modalities=["image"], max_new_tokens=len(ref["gen_ids"]), return_scores=True)
    eager = model.generate(ids, decoder="eager", **kw)
    static = model.generate(ids, decoder="static", **kw)
    assert torch.equal(static.sequences, eager.sequences)
    assert static.sequences[0].cpu().tolist() == ref["gen_ids"].tolist()
    torch.testing.assert_close(static.scores, eager.scores, rtol=0, atol=1e-5)


def test_a_failed_compile_falls_back_under_auto_and_raises_when_asked_for(model: LlavaSTModel, monkeypatch) -> None:
    import llava_st.model.static_decode as sd

    def broken(fn, **kwargs):
        def run(*args, **kw):
            raise RuntimeError("no toolchain")
        return run

    monkeypatch.setattr(sd.torch, "compile", broken)
    store = decode_cache(model)
    saved = dict(store.compiled)
    store.compiled.clear()
    ids, kw = _batch(model)
    try:
        with pytest.raises(RuntimeError, match="no toolchain"):
            model.generate(ids, decoder="compiled", max_new_tokens=3, **kw)  # asked for: the error
        assert store.compile_failed is None
        dec = StaticDecoder(model, 3, ids.shape[1] + 8, compile=True, strict=False)  # what "auto" builds
        embeds = model.embed_inputs(ids.to(model.device), kw["coord_values"], kw["pixel_values"], kw["modalities"])
        mask = kw["attention_mask"].to(model.device)
        dec.prefill(embeds, mask, (mask.cumsum(-1) - 1).clamp(min=0))
        with pytest.warns(RuntimeWarning, match="no toolchain"):
            logits = dec.feed(torch.tensor([[5], [6], [7]], device=model.device), torch.ones(3, 1, dtype=torch.bool,
                              device=model.device), torch.full((3, 1), 40, device=model.device))
        assert logits.shape == (3, model.config.extended_vocab_size) and not dec.compile
        assert "no toolchain" in store.compile_failed
        dec.close()
    finally:
        store.compiled.clear()
        store.compiled.update(saved)
        store.compile_failed = None


@pytest.mark.skipif(compile_available(torch.device(DEVICE)) is not None, reason="torch.compile is not available here")
def test_compiled_chunks_of_every_width_share_one_graph(model: LlavaSTModel) -> None:
    """Chunked feeds (a grammar's forced runs) on the compiled step equal the eager path; widths
    2..16 compile one graph with a symbolic width, besides the one-token graph."""
    ids, kw = _batch(model)
    embeds = model.embed_inputs(ids.to(model.device), kw["coord_values"], kw["pixel_values"], kw["modalities"])
    mask = kw["attention_mask"].to(model.device)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    store = decode_cache(model)
    store.compiled.clear()
    eager, static = EagerDecoder(model), StaticDecoder(model, 3, ids.shape[1] + 128, compile=True)
    v = model.config.text.vocab_size
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        eager.prefill(embeds, mask, pos), static.prefill(embeds, mask, pos)
        next_pos = pos[:, -1] + 1
        for width in (1, 2, 3, 5, 9, 16, 1, 4):
            chunk = torch.randint(0, v + 300, (3, width), generator=g).to(model.device)
            valid = (torch.rand(3, width, generator=g) < 0.8).to(model.device)
            valid[:, 0] = True
            positions = next_pos[:, None] + (valid.cumsum(1) - 1).clamp(min=0)
            a, b = eager.feed(chunk, valid, positions), static.feed(chunk, valid, positions)
            torch.testing.assert_close(b, a, rtol=0, atol=2e-5)
            assert torch.equal(a.argmax(-1), b.argmax(-1))
            next_pos = next_pos + valid.sum(1)
    static.close()
    assert sorted(str(k[1]) for k in store.compiled) == ["1", "chunk"]
