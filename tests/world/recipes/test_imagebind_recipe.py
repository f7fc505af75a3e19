"""ImageBind's binding stage: CLIP towers carried over exactly, sensors trained against frozen
targets, world sensor inputs, evaluation helpers and the whole two-stage recipe at toy size."""

import json

import pytest
import torch

import polymodal
from polymodal.world import WorldDataset
from polymodal.world.recipes import binding_eval as ev
from polymodal.models.imagebind import TowerConfig
from polymodal.registry import preset
from polymodal.models.imagebind import imagebind_from_clip
from polymodal.objectives import ClipLoss
from polymodal.world.recipes.binding_data import video_clips_of, world_sensor_input
from polymodal.train.binding import train_encoder
from polymodal.train.config import OptimConfig, TrainConfig
from polymodal.train.config import BindConfig, ConfigError, load_config


def _sensors():
    cfg = preset("imagebind-world")
    for m in ("audio", "depth", "thermal", "imu"):
        setattr(cfg, m, TowerConfig(32, 1, 2))
    return cfg


@pytest.mark.parametrize("stem", ["patch", "conv"])
def test_clip_towers_are_carried_over_exactly(stem):
    torch.manual_seed(0)
    config = preset("clip-tiny")
    if stem == "conv":
        config.vision.stem, config.vision.stem_channels = "conv", tuple([8] * (config.vision.patch_size.bit_length() - 1))
    clip = polymodal.create(config).eval()
    if stem == "conv":  # BatchNorm statistics that are not the identity, as after training
        for m in clip.visual.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
    model = imagebind_from_clip(clip, _sensors()).eval()
    images, ids = torch.randn(2, 3, 32, 32), torch.randint(1, 999, (2, 16))
    with torch.no_grad():
        torch.testing.assert_close(model.encode("image", images, postprocess=False), clip.encode_image(images),
                                   rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(model.encode("text", ids, postprocess=False), clip.encode_text(ids))
        # A 2-frame clip of one repeated image is that image; the 8-frame path averages 4 clips.
        clip_of = images[:1, :, None].repeat(1, 1, 2, 1, 1)
        torch.testing.assert_close(model.encode("image", clip_of), model.encode("image", images[:1]),
                                   rtol=1e-5, atol=1e-5)
        if stem == "conv":  # two different frames: the mean of the per-frame stem tokens
            two = torch.randn(1, 3, 2, 32, 32)
            stem_tokens = model.encoders["image"].stem(two)
            per_frame = [clip.visual.stem(two[:, :, t]) for t in range(2)]
            torch.testing.assert_close(stem_tokens, (per_frame[0] + per_frame[1]) / 2)
    assert model.config.map_size == 32
    assert model.postprocessors["text"].scale().item() == pytest.approx(clip.scale().item())


def test_binding_loss_is_low_for_matched_rows_only():
    a = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    assert ClipLoss()(a, a, 20.0) < 0.05
    assert ClipLoss()(a, a.roll(1, 0), 20.0) > 5.0


def test_train_encoder_learns_a_linear_binding_and_is_deterministic():
    torch.manual_seed(0)
    x = torch.randn(256, 12)
    targets = torch.nn.functional.normalize(x @ torch.randn(12, 8), dim=-1)

    def fit():
        torch.manual_seed(1)
        enc = torch.nn.Sequential(torch.nn.Linear(12, 32), torch.nn.GELU(), torch.nn.Linear(32, 8))
        return enc, train_encoder(enc, 10.0, x, targets, optim=OptimConfig(lr=3e-3, weight_decay=0.05, warmup_steps=5),
                                  train=TrainConfig(steps=60, batch_size=64, precision="fp32"))

    enc, losses = fit()
    _, again = fit()
    assert losses == again
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    with torch.no_grad():
        r = ev.retrieval(enc(x), targets)
    assert r["R@1"] > 0.5


def test_world_sensor_inputs_fit_the_world_preset():
    item = WorldDataset("train", 1, image_size=64, modalities=("audio", "depth", "thermal", "imu", "video"),
                        frames=8)[0]
    cfg = preset("imagebind-world")
    model = polymodal.create("imagebind-world").eval()
    shapes = {m: world_sensor_input(m, item, cfg.audio_frames).shape for m in ("audio", "depth", "thermal", "imu")}
    assert shapes == {"audio": (1, 128, 98), "depth": (1, 64, 64), "thermal": (1, 64, 64), "imu": (6, 100)}
    clips = video_clips_of(item["video"])
    assert clips.shape == (4, 3, 2, 64, 64)
    with torch.no_grad():
        out = model({m: world_sensor_input(m, item, cfg.audio_frames)[None] for m in shapes} | {"image": clips[None]})
    assert {m: tuple(v.shape) for m, v in out.items()} == {m: (1, 128) for m in [*shapes, "image"]}
    with pytest.raises(ValueError, match="unknown sensor modality 'smell'"):
        world_sensor_input("smell", item, 98)


def test_zero_shot_truth_chance_and_arithmetic():
    scenes = [WorldDataset("test", 40).__getitem__(i)["scene"] for i in range(40)]
    correct = ev.truth("place", scenes)
    assert correct.sum(1).eq(1).all()
    onehot = correct.float()
    z = ev.zero_shot(onehot, torch.eye(5), correct)
    assert z["top1"] == 1.0 and z["chance"] == correct.float().mean(0).max().item()
    # Embeddings that are exactly (object kinds, place) one-hots: the sum query finds A's object in B's place
    # whenever such a scene exists, so it beats either query alone.
    kinds = sorted({(o.colour, o.shape) for s in scenes for o in s.objects})
    obj = torch.tensor([[float(any((o.colour, o.shape) == k for o in s.objects)) for k in kinds] for s in scenes])
    image = torch.cat([obj, onehot], dim=1)
    sensor = torch.cat([torch.zeros_like(obj), onehot], dim=1)
    rates = ev.arithmetic(image, sensor, scenes, pairs=100)
    assert rates["sum"] > rates["image"] and rates["sum"] > rates["sensor"]
    assert len(ev.prompts("count")) == 4 and len(ev.prompts("shape")) == 6


def test_bind_config_is_validated(tmp_path):
    cfg = load_config("configs/imagebind-world.yaml", ["train.steps=7"], cls=BindConfig)
    assert cfg.train.steps == 7 and cfg.modalities == ["audio", "depth", "thermal", "imu"]
    # Keys a section does not give keep the recipe's defaults, not the section class's.
    assert (cfg.train.precision, cfg.train.batch_size, cfg.optim.lr) == ("bf16", 128, 1e-3)
    assert load_config(None, ["train.steps=5"], cls=BindConfig).train.precision == "bf16"
    with pytest.raises(ConfigError, match=r"modalities\[0\]: expected str"):
        load_config(None, ["modalities=[1]"], cls=BindConfig)
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(None, ["stage1.nope=1"], cls=BindConfig)


@pytest.mark.slow
def test_recipe_end_to_end_at_toy_size(tmp_path):
    from polymodal.world.recipes.imagebind import run_recipe

    stage1 = ["model.preset=clip-tiny", "data.image_size=32", "data.train_n=64", "data.val_n=32",
              "data.tokenizer_vocab=400", "train.batch_size=32", "train.steps=2", "train.threads=1",
              "optim.warmup_steps=1", f"train.out={tmp_path / 'clip'}"]
    cfg = load_config(None, [f"stage1.overrides={json.dumps(stage1)}", "stage1.config=configs/clip-world-tiny.yaml",
                             "train_n=48", "test_n=24", "train.steps=3", "train.batch_size=16", "optim.warmup_steps=1", "workers=0",
                             "modalities=[audio, imu]", f"out={tmp_path / 'bind'}"], cls=BindConfig)
    lines = []
    results = run_recipe(cfg, report=lines.append)
    assert any("stage 1: training" in line for line in lines)
    assert set(results["modalities"]) == {"audio", "imu"}
    audio = results["modalities"]["audio"]
    assert set(audio["zero_shot"]) == {"place", "shape"} and "arithmetic" in audio
    place = audio["zero_shot"]["place"]
    for acc in (place["emergent"], place["supervised"]):  # a fraction of the 24 test scenes
        assert 0 <= acc <= 1 and acc * 24 == pytest.approx(round(acc * 24))
    table = (tmp_path / "bind" / "results.md").read_text()
    assert "| audio | image | place **(target)** |" in table
    bound = polymodal.load(tmp_path / "bind" / "model")
    assert bound.modalities == ("image", "text", "audio", "imu")
    # The vision tower stayed frozen: it still embeds images as the stage-1 CLIP does.
    clip = polymodal.load(tmp_path / "clip" / "model")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(bound.encode("image", x, postprocess=False), clip.encode_image(x),
                                   rtol=1e-5, atol=1e-5)
    again = run_recipe(cfg, report=lines.append)  # stage 1 is reused, not retrained
    assert any("stage 1: reusing" in line for line in lines)
    assert again["modalities"]["audio"]["zero_shot"] == audio["zero_shot"]

