"""The ``use_lape`` switch (ours, for ablations): off, the visual features carry no coordinate-table signal."""

from __future__ import annotations

import dataclasses

import torch

from llava_st.config import LlavaSTConfig
from llava_st.model import LlavaSTModel
from llava_st.zoo import tiny


def test_lape_off_leaves_the_features_untouched_by_the_tables(tmp_path):
    torch.manual_seed(0)
    on = LlavaSTModel(tiny()).eval()
    off = LlavaSTModel(dataclasses.replace(tiny(), use_lape=False)).eval()
    off.load_state_dict(on.state_dict())
    px = torch.randn(2, 3, 96, 96)
    video = torch.randn(16, 3, 96, 96)
    with torch.no_grad():
        base_img, base_vid = off.get_image_features(px), off.get_video_features(video).slow
        for p in off.coord_tables.parameters():
            p.add_(1.0)
        assert torch.equal(off.get_image_features(px), base_img)
        assert torch.equal(off.get_video_features(video).slow, base_vid)
        assert not torch.equal(on.get_image_features(px), base_img)  # with LAPE the tables are added
    off.save_pretrained(tmp_path)
    assert LlavaSTConfig.from_pretrained(tmp_path).use_lape is False
    on.save_pretrained(tmp_path / "on")
    assert LlavaSTConfig.from_pretrained(tmp_path / "on").use_lape is True
