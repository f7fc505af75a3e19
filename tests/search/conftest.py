import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

import polymodal
from polymodal.data.world import WorldDataset
from polymodal.models.imagebind import TowerConfig
from polymodal.modalities.text import train_tokenizer
from polymodal.registry import preset
from polymodal.train.binding import imagebind_from_clip


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """A tiny bound ImageBind (random clip-tiny towers, 1-block sensors) saved with a tokenizer."""
    folder = tmp_path_factory.mktemp("ib")
    torch.manual_seed(0)
    sensors = preset("imagebind-world")
    for m in ("audio", "depth", "thermal", "imu"):
        setattr(sensors, m, TowerConfig(32, 1, 2))
    model = imagebind_from_clip(polymodal.create("clip-tiny"), sensors)
    polymodal.save(model, folder)
    texts = [WorldDataset("train", 64, modalities=("caption",))[i]["caption"] for i in range(64)]
    train_tokenizer(texts, "clip", 400, context_length=16).save(folder)
    return folder


@pytest.fixture(scope="session")
def world_files():
    return write_world_files


def write_world_files(folder, n, start=0):
    """Scenes start..start+n of the test split as ordinary files: .png, .wav, *_depth.npy,
    *_thermal.npy, *_imu.npy, .txt caption."""
    folder.mkdir(parents=True, exist_ok=True)
    ds = WorldDataset("test", start + n, image_size=32,
                      modalities=("image", "caption", "audio", "depth", "thermal", "imu"), frames=8)
    for i in range(start, start + n):
        it, stem = ds[i], f"scene{i:03d}"
        Image.fromarray(it["image"].permute(1, 2, 0).numpy()).save(folder / f"{stem}.png")
        sf.write(folder / f"{stem}.wav", it["audio"].numpy(), 16000)
        np.save(folder / f"{stem}_depth.npy", it["depth"][0].numpy())
        np.save(folder / f"{stem}_thermal.npy", it["thermal"][0].numpy())
        np.save(folder / f"{stem}_imu.npy", it["imu"].numpy())
        (folder / f"{stem}.txt").write_text(it["caption"])
    return folder
