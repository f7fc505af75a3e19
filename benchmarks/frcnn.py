"""Bottom-up-attention detector speed: polymodal's Faster R-CNN vs the reference (transformers' LXMERT demo
``modeling_frcnn.py``), same weights, side by side in one process.

    python benchmarks/frcnn.py --reference LXMERT_DIR [--pictures 2] [--steps 3] [--threads 2]

The reference imports torchvision, which does not import beside the project's CPU torch 2.13.0, so this
runs in the throw-away venv of tests/fixtures/makers/frcnn_vg/README.md (torch 2.14.1 + torchvision
0.29.1) with the project's ``src`` put on ``sys.path`` here; LXMERT_DIR holds the reference's
``modeling_frcnn.py``, ``processing_image.py`` and ``utils.py``.

The detector is the VG one (ResNet-101 C4, 1,600 classes, 400 attributes, RoI pool 14×14, res5 with
stride 1 and dilation 2) at the reference's test size (short side 600, long side ≤ 1000), with random
"scaled" weights made by the reference model and loaded into ours from its saved folder. Random weights
leave few distinct boxes after the RPN's NMS at 0.7 (even at 0.99: many clip to the same box); here the
RPN's NMS threshold is 1.0 (nothing suppressed) so that both run the box head on the 300 proposals a
trained detector hands it (the head is most of the work). Each job is one picture through
preprocessing, detection and the choice of 36 boxes; runs alternate, the median of ``--steps`` over
``--pictures`` real photographs (tests/pictures, upscaled) is reported. The reference has no bf16 path on
the CPU (torchvision's ``roi_pool`` has no bfloat16 kernel there), so ours in bf16 (autocast) is compared
with its fp32; the bf16 feature cosine compares ours in bf16 with ours in fp32 on the same proposals. Memory: each job again
in a fresh process: resident memory once the model is loaded, and the peak growth over two pictures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "makers" / "frcnn_vg"))
sys.path.insert(0, str(Path(__file__).parent))
from timing import alternating_medians, peak_rss_growth_mib, _rss_kib  # noqa: E402

def vg_config() -> dict:
    """The fixture maker's config (every key the reference reads) at the VG detector's sizes."""
    import copy

    from make_fixture import CONFIG

    c = copy.deepcopy(CONFIG)
    c["MODEL"]["PIXEL_STD"] = [57.0, 57.0, 57.0]  # unit-scale inputs for random weights (the real model: 1, 1, 1)
    c["RESNETS"].update(DEPTH=101, WIDTH_PER_GROUP=64, STEM_OUT_CHANNELS=64, RES2_OUT_CHANNELS=256)
    c["ANCHOR_GENERATOR"]["SIZES"] = [[32, 64, 128, 256, 512]]
    c["PROPOSAL_GENERATOR"].update(HIDDEN_CHANNELS=512, MIN_SIZE=0)
    c["RPN"].update(NMS_THRESH=1.0, PRE_NMS_TOPK_TEST=6000, POST_NMS_TOPK_TEST=300)
    c["ROI_HEADS"].update(NUM_CLASSES=1600, NMS_THRESH_TEST=[0.6, 0.9, 1.0])
    c["ROI_BOX_HEAD"].update(POOLER_RESOLUTION=14, NUM_ATTRS=400)
    c["INPUT"].update(MIN_SIZE_TEST=600, MAX_SIZE_TEST=1000)
    c.update(MIN_DETECTIONS=36, MAX_DETECTIONS=36)
    return c


VG = vg_config()


def pictures(n: int) -> list[torch.Tensor]:
    files = sorted((ROOT / "tests" / "pictures").glob("*.jpg"))[:n]
    return [torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), dtype=np.float32)) for f in files]


def make_weights(reference: str, folder: Path) -> None:
    import yaml
    from make_fixture import scaled_init

    sys.path.insert(0, reference)
    from modeling_frcnn import GeneralizedRCNN
    from utils import Config

    torch.manual_seed(0)
    model = GeneralizedRCNN(Config(VG)).eval()
    scaled_init(model)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    (folder / "config.yaml").write_text(yaml.safe_dump(VG, sort_keys=False))


def jobs(reference: str, folder: Path, which: list[str]) -> dict:
    """name → function(picture) for the jobs asked for, each building only its own model."""
    import contextlib

    out = {}
    bf16 = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
    if any(w.startswith("reference") for w in which):
        sys.path.insert(0, reference)
        from modeling_frcnn import GeneralizedRCNN
        from processing_image import Preprocess
        from utils import Config

        cfg = Config(VG)
        ref = GeneralizedRCNN(cfg).eval()
        ref.load_state_dict(torch.load(folder / "pytorch_model.bin", weights_only=True))
        prep = Preprocess(cfg)

        def run_reference(picture, precision):
            with torch.inference_mode(), (bf16() if precision == "bf16" else contextlib.nullcontext()):
                images, sizes, scales = prep([picture.clone()])
                return ref(images, sizes, scales_yx=scales, padding="max_detections", max_detections=36,
                           return_tensors="pt")

        out["reference fp32"] = lambda picture: run_reference(picture, "fp32")
    if any(w.startswith("polymodal") for w in which):
        import polymodal
        from polymodal.models.frcnn_input import prepare_images
        from polymodal.models.region_selection import select_regions

        ours = polymodal.load(folder)

        def run_ours(picture, precision):
            with torch.inference_mode(), (bf16() if precision == "bf16" else contextlib.nullcontext()):
                images, sizes, scales = prepare_images([picture], ours.config)
                return select_regions(ours.config, ours.run(images, sizes), sizes, scales)

        out["model"] = ours
        for p in ("fp32", "bf16"):
            if f"polymodal {p}" in which:
                out[f"polymodal {p}"] = lambda picture, p=p: run_ours(picture, p)
    return out


def bf16_cosine(ours, picture) -> dict:
    """Ours in bf16 vs fp32 on the fp32 run's proposals: cosine of each box's pooled feature."""
    import torch.nn.functional as F

    from polymodal.models.frcnn_input import prepare_images

    with torch.inference_mode():
        images, sizes, _ = prepare_images([picture], ours.config)
        fp32 = ours.run(images, sizes)
        boxes = fp32["proposals"][0]
        index = torch.zeros(len(boxes), dtype=torch.long)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            features = ours.backbone(images.contiguous(memory_format=torch.channels_last))
            pooled = ours.head(features, boxes, index, ours.config.stride)[0].float()
    cos = F.cosine_similarity(pooled, fp32["pooled"], dim=-1)
    return {"mean": round(float(cos.mean()), 5), "min": round(float(cos.min()), 5), "boxes": len(boxes)}


def child(args) -> None:
    torch.set_num_threads(args.threads)
    picture = pictures(1)[0]
    fns = jobs(args.reference, Path(args.folder), [args.job])
    loaded = _rss_kib() / 1024
    fn = fns[args.job]
    grown = peak_rss_growth_mib(lambda: (fn(picture), fn(picture)))
    print(json.dumps({"loaded_mib": round(loaded), "peak_growth_mib": round(grown)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", required=True, help="folder with modeling_frcnn.py, processing_image.py, utils.py")
    ap.add_argument("--pictures", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--job")
    ap.add_argument("--folder")
    args = ap.parse_args()
    if args.job:
        return child(args)
    torch.set_num_threads(args.threads)
    names = ["reference fp32", "polymodal fp32", "polymodal bf16"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_weights(args.reference, folder)
        fns = jobs(args.reference, folder, names)
        ours = fns.pop("model")
        photos = pictures(args.pictures)
        seconds = alternating_medians({k: (lambda fn=fn: [fn(p) for p in photos]) for k, fn in fns.items()},
                                      args.steps)
        per_second = {k: len(photos) / v for k, v in seconds.items()}
        cosine = bf16_cosine(ours, photos[0])
        del ours, fns
        memory = {}
        for name in names:
            proc = subprocess.run([sys.executable, __file__, "--reference", args.reference, "--job", name,
                                   "--folder", str(folder), "--threads", str(args.threads)],
                                  capture_output=True, text=True, check=True)
            memory[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    result = {
        "torch": torch.__version__, "threads": args.threads, "pictures": len(photos),
        "images_per_s": {k: round(v, 4) for k, v in per_second.items()},
        "ratio_fp32": round(per_second["polymodal fp32"] / per_second["reference fp32"], 3),
        "ratio_bf16_vs_reference_fp32": round(per_second["polymodal bf16"] / per_second["reference fp32"], 3),
        "bf16_feature_cosine": cosine, "memory_fresh_process": memory,
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
