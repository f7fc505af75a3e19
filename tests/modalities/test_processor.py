"""Each model folder carries its processing: saved, read back, official for official layouts."""

import json

import numpy as np
import pytest
import torch

import polymodal
from polymodal.world.sensor_inputs import world_processor, world_sensor_input
from polymodal.modalities.processor import FILE, MapProcessing, Processor, processor_for
from polymodal.modalities.registry import encoder_input_dims, modality, modality_names
from polymodal.registry import preset
from polymodal.tasks import Embedder


def test_every_modality_is_registered_once_with_its_encoder():
    assert set(modality_names()) == {"image", "text", "audio", "depth", "thermal", "imu", "video", "pdf"}
    assert {m: modality(m).encoder for m in ("video", "pdf", "audio")} == {"video": "image", "pdf": "image",
                                                                          "audio": "audio"}
    assert encoder_input_dims("image") == {3, 4}  # images [3, H, W] and clips [3, T, H, W]
    with pytest.raises(KeyError, match="unknown modality 'smell'; known: audio, depth"):
        modality("smell")


def test_processor_round_trips_through_its_json(tmp_path):
    p = world_processor(preset("imagebind-world"))
    p.save(tmp_path)
    assert json.loads((tmp_path / FILE).read_text())["depth"]["kind"] == "map-processing"
    assert Processor.load(tmp_path) == p
    assert Processor.load(tmp_path / "nowhere") is None
    (tmp_path / FILE).write_text('{"image": {"kind": "image-processing", "size": 3, "colour": 1}}')
    with pytest.raises(ValueError, match=r"unknown .*processor_config.json.image config keys: \['colour'\]"):
        Processor.load(tmp_path)


def test_official_imagebind_gets_official_processing_not_the_worlds(fixtures, tmp_path):
    """The bug this fixes: search fed every ImageBind the world's depth/thermal scaling."""
    official = polymodal.load(fixtures / "imagebind")
    p = processor_for(official, fixtures / "imagebind")
    assert p.depth == MapProcessing(224, disparity=True, mean=0.0, std=1.0)
    assert p.thermal == MapProcessing(224) and p.imu.gravity == 0.0 and p.audio.frames == 204
    world = world_processor(official.config)
    assert world.depth.mean == 0.25 and world.thermal.mean == 25.0 and world.imu.gyro_scale == 3.0


def test_a_bound_model_embeds_sensor_files_exactly_as_it_was_trained(tmp_path):
    """Files written from world samples and read back through the saved processor equal the
    training inputs (world_sensor_input) bit for bit."""
    from polymodal.world import WorldDataset
    from polymodal.models.imagebind import imagebind_from_clip

    sensors = preset("imagebind-world")
    model = imagebind_from_clip(polymodal.create("clip-tiny"), sensors)
    polymodal.save(model, tmp_path / "m", processor=world_processor(model.config))
    embedder = Embedder.from_checkpoint(tmp_path / "m")
    assert set(embedder.modalities) == {"image", "pdf", "video", "audio", "depth", "thermal", "imu"}  # no tokenizer
    item = WorldDataset("test", 1, image_size=model.config.map_size, modalities=("depth", "thermal", "imu"),
                        frames=8)[0]
    for m in ("depth", "thermal", "imu"):
        raw = item[m][0] if m != "imu" else item[m]
        np.save(tmp_path / f"x_{m}.npy", raw.numpy())
        got = embedder.load(tmp_path / f"x_{m}.npy", m)
        torch.testing.assert_close(got, world_sensor_input(m, item, model.config.audio_frames), rtol=0, atol=0)


def test_clip_folder_uses_a_hf_preprocessor_config_when_it_has_no_own(tmp_path):
    model = polymodal.create("clip-tiny")
    polymodal.save(model, tmp_path)
    (tmp_path / FILE).unlink()
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.5] * 3, "image_std": [0.25] * 3}))
    p = processor_for(model, tmp_path)
    assert p.image.size == 32 and p.image.mean == (0.5,) * 3 and p.image.std == (0.25,) * 3
    assert Embedder.from_checkpoint(tmp_path).modalities == ("image", "pdf")  # no tokenizer: no text
