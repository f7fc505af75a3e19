"""S3D-G features: clips per second in fp32 and bf16, and the memory of extracting a long video.

    python benchmarks/s3d.py [--batch 4] [--steps 3] [--threads 2] [--minutes 1,10]

1. Speed: ``s3d-howto100m`` (random weights; the official model's geometry) on batches of one-second
   clips of 30 frames at 224 px, as MMPT's extractor feeds it: torch's default layout against the
   channels-last layout ``s3d_backbone`` runs in, fp32, bf16 autocast and bf16 weights; runs alternate,
   median of ``--steps``; each variant's cosine to fp32 and its peak memory growth during one batch.
2. Memory against video length: ``video_features`` (decode as a stream → 30 fps → resize + centre
   crop → batches of 8 s) over generated 320×240 H.264 videos of each ``--minutes``. S3D at ≈ 0.65 s
   a clip on 2 cores would take 6.5 min per 10 min of video, so the streaming pipeline is measured here
   with a stand-in backbone that takes the same input and returns a 512-d spatial mean; S3D's own
   memory is constant per batch (part 1) and adds to it. The peak growth of resident memory must not
   depend on the video's length.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from timing import alternating_medians, peak_rss_growth_mib  # noqa: E402


def make_video(path: Path, seconds: int, fps: int = 30, size=(320, 240)) -> Path:
    """A moving-gradient H.264 video (encoded fast; content does not matter for memory)."""
    import av

    w, h = size
    base = (np.arange(w)[None, :, None] + np.arange(h)[:, None, None] + np.arange(3)[None, None, :] * 40)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "30"}
        for i in range(seconds * fps):
            frame = av.VideoFrame.from_ndarray(((base + i * 3) % 256).astype(np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def speed(args) -> None:
    import copy

    import polymodal

    model = polymodal.create("s3d-howto100m").eval()
    x = torch.rand(args.batch, 3, 30, 224, 224, generator=torch.Generator().manual_seed(0))
    last = torch.channels_last_3d
    variants = {  # name → (model, input, autocast)
        "fp32, NCDHW (torch's default layout)": (model, x, False),
        "bf16 autocast, NCDHW": (model, x, True),
        "fp32, channels-last (the backbone's)": (copy.deepcopy(model).to(memory_format=last),
                                                 x.contiguous(memory_format=last), False),
        "bf16 weights, channels-last (--bf16)": (copy.deepcopy(model).to(torch.bfloat16, memory_format=last),
                                                 x.to(torch.bfloat16).contiguous(memory_format=last), False),
    }
    jobs = {}
    for name, (m, inp, autocast) in variants.items():
        def run(m=m, inp=inp, autocast=autocast):
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                return m(inp)["video_embedding"].float()
        jobs[name] = run
    reference = jobs["fp32, NCDHW (torch's default layout)"]()
    med = alternating_medians(jobs, args.steps)
    print(f"1. S3D-G (s3d-howto100m, random weights), batches of {args.batch} one-second clips "
          f"(30 × 224 × 224), {args.threads} threads, median of {args.steps}")
    print("| variant | clips/s | vs fp32 NCDHW | cosine to fp32 (min over clips) | peak RSS growth per batch (MiB) |")
    print("|---|---|---|---|---|")
    base = med["fp32, NCDHW (torch's default layout)"]
    for name, fn in jobs.items():
        cosine = torch.nn.functional.cosine_similarity(fn(), reference, dim=1).min().item()
        print(f"| {name} | {args.batch / med[name]:.2f} | {base / med[name]:.2f}× | {cosine:.4f} | "
              f"{peak_rss_growth_mib(fn):.0f} |", flush=True)


def memory(args) -> None:
    from polymodal.tasks.video_features import Backbone, video_features

    def embed(seconds: np.ndarray) -> torch.Tensor:  # [S, 30, 224, 224, 3] uint8 → [S, 512]
        x = torch.from_numpy(seconds).float().mean(dim=(1, 2, 3))  # [S, 3]
        return x.repeat(1, 171)[:, :512]

    stand_in = Backbone("stand-in", 30, 224, 512, embed)
    print("\n2. video_features over generated 320×240 30 fps videos (S3D's input pipeline, stand-in backbone)")
    print("| video | seconds of features | wall s | peak RSS growth (MiB) |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in (int(m) for m in args.minutes.split(",")):
            path = make_video(Path(tmp) / f"{minutes}min.mp4", minutes * 60)
            out = {}
            start = time.perf_counter()
            growth = peak_rss_growth_mib(lambda: out.setdefault("f", video_features(path, stand_in)))
            print(f"| {minutes} min ({path.stat().st_size / 2**20:.1f} MiB file) | {len(out['f'])} | "
                  f"{time.perf_counter() - start:.0f} | {growth:.0f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--minutes", default="1,10")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}")
    speed(args)
    memory(args)


if __name__ == "__main__":
    main()
