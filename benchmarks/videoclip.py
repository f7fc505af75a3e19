"""VideoCLIP towers: polymodal vs MMPT's construction on the same weights, side by side.

    python benchmarks/videoclip.py [--batch 32] [--seconds 32] [--tokens 24] [--steps 5] [--threads 2]

The real model's geometry (BERT-base: a 6-layer video tower over 512-d S3D features, a 12-layer text
tower), random weights. The reference is what MMPT's ``MMFusionSeparate`` runs, built from
transformers: a ``BertModel`` reading ``[CLS] + videomlp(features) + [SEP]`` as ``inputs_embeds``
with MMPT's position ids (the video [SEP] at ``max_video_len + 1``), the video MLP (Linear → GELU →
LayerNorm 1e-5 → Linear), a second ``BertModel`` for the text, and the masked means MMPT pools with.
Its weights are written in MMPT's checkpoint layout and loaded into ours by ``polymodal.load``, so
both compute the same numbers (the max difference is printed). Jobs: the video tower on a batch of
clips, the text tower on a batch of sentences, in fp32, under bf16 autocast, and with bf16 weights;
runs alternate in one process, the median of ``--steps`` is reported.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from timing import alternating_medians  # noqa: E402

CLS, SEP, MAX_VIDEO_LEN, INPUT_DIM = 101, 102, 32, 512


class Reference(nn.Module):
    """MMPT's VideoCLIP computation from transformers' BertModel + the reference video MLP."""

    def __init__(self):
        import transformers

        super().__init__()
        base = dict(hidden_size=768, num_attention_heads=12, intermediate_size=3072, hidden_act="gelu",
                    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, max_position_embeddings=512)
        self.video = transformers.BertModel(transformers.BertConfig(num_hidden_layers=6, **base))
        self.text = transformers.BertModel(transformers.BertConfig(num_hidden_layers=12, **base))
        self.videomlp = nn.Sequential(nn.Linear(INPUT_DIM, 768), nn.GELU(), nn.LayerNorm(768, eps=1e-5),
                                      nn.Linear(768, 768))

    def mmpt_state_dict(self) -> dict:
        sd = {f"video_encoder.bert.{k}": v for k, v in self.video.state_dict().items()}
        sd |= {f"text_encoder.{k}": v for k, v in self.text.state_dict().items()}
        names = {"0": "linear1", "2": "LayerNorm", "3": "linear2"}
        sd |= {f"video_encoder.videomlp.{names[k.split('.')[0]]}.{k.split('.')[1]}": v
               for k, v in self.videomlp.state_dict().items()}
        return {k: v.contiguous() for k, v in sd.items()}

    def encode_video(self, vfeats: torch.Tensor, vmasks: torch.Tensor) -> torch.Tensor:
        b, v = vfeats.shape[:2]
        words = self.video.embeddings.word_embeddings(torch.tensor([[CLS, SEP]]).expand(b, 2))
        x = torch.cat([words[:, :1], self.videomlp(vfeats), words[:, 1:]], dim=1)
        positions = torch.cat([torch.arange(v + 1), torch.tensor([MAX_VIDEO_LEN + 1])]).expand(b, -1)
        one = torch.ones(b, 1, dtype=torch.long)
        hidden = self.video(inputs_embeds=x, position_ids=positions, attention_mask=torch.cat([one, vmasks, one], 1),
                            token_type_ids=torch.zeros(b, v + 2, dtype=torch.long)).last_hidden_state
        return masked_mean(hidden, torch.cat([one * 0, vmasks, one], 1))

    def encode_text(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = self.text(input_ids=ids, attention_mask=mask).last_hidden_state
        return masked_mean(hidden, torch.cat([torch.zeros_like(mask[:, :1]), mask[:, 1:]], 1))


def masked_mean(hidden: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    w = weights.to(hidden.dtype).unsqueeze(-1)
    return (hidden * w).sum(1) / w.sum(1)


def models(folder: Path):
    """(reference, ours) with the same weights, ours loaded from the reference's MMPT-layout file."""
    import json

    from safetensors.torch import save_file

    import polymodal

    torch.manual_seed(0)
    ref = Reference().eval()
    save_file(ref.mmpt_state_dict(), str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"bert_config_args": {"num_attention_heads": 12},
                                                     "max_video_len": MAX_VIDEO_LEN}))
    return ref, polymodal.load(folder).eval()


def inputs(batch: int, seconds: int, tokens: int) -> dict:
    g = torch.Generator().manual_seed(1)
    vmasks = torch.ones(batch, seconds, dtype=torch.long)
    vmasks[batch // 2:, seconds * 3 // 4:] = 0  # half the clips shorter, as real batches are
    ids = torch.randint(1000, 30522, (batch, tokens), generator=g)
    ids[:, 0], ids[:, -1] = CLS, SEP
    mask = torch.ones(batch, tokens, dtype=torch.long)
    mask[batch // 2:, tokens * 2 // 3:] = 0
    return {"vfeats": torch.randn(batch, seconds, INPUT_DIM, generator=g), "vmasks": vmasks, "ids": ids, "mask": mask}


def jobs(ref, ours, x: dict) -> dict:
    """name → one forward of a tower: fp32, bf16 autocast (fp32 weights), and bf16 weights (a bf16
    copy of each model, as ``Embedder.from_checkpoint(dtype=torch.bfloat16)`` serves)."""
    import copy

    autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
    half = {"mmpt": copy.deepcopy(ref).to(torch.bfloat16), "ours": copy.deepcopy(ours).to(torch.bfloat16)}
    out = {}
    for precision, ctx in (("fp32", contextlib.nullcontext), ("bf16-autocast", autocast),
                           ("bf16-weights", contextlib.nullcontext)):
        for who, m in (("mmpt", ref), ("ours", ours)):
            m = half[who] if precision == "bf16-weights" else m
            feats = x["vfeats"].to(torch.bfloat16) if precision == "bf16-weights" else x["vfeats"]

            def video(m=m, ctx=ctx, feats=feats):
                with torch.no_grad(), ctx():
                    return m.encode_video(feats, x["vmasks"]).float()

            def text(m=m, ctx=ctx):
                with torch.no_grad(), ctx():
                    return m.encode_text(x["ids"], x["mask"]).float()

            out[f"video {who} {precision}"], out[f"text {who} {precision}"] = video, text
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=32, help="feature steps per clip (≤ 32)")
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        ref, ours = models(Path(tmp))
    x = inputs(args.batch, args.seconds, args.tokens)
    todo = jobs(ref, ours, x)
    diff = {t: (todo[f"{t} mmpt fp32"]() - todo[f"{t} ours fp32"]()).abs().max().item() for t in ("video", "text")}
    med = alternating_medians(todo, args.steps)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, {args.seconds} s clips, "
          f"{args.tokens} tokens, BERT-base towers (video 6 layers, text 12), median of {args.steps}; "
          f"max |ours − MMPT| fp32: video {diff['video']:.1e}, text {diff['text']:.1e}")
    print("| job | items/s | vs MMPT fp32 | vs MMPT same precision |")
    print("|---|---|---|---|")
    for k in todo:
        tower, who, precision = k.split()
        print(f"| {k} | {args.batch / med[k]:.1f} | {med[f'{tower} mmpt fp32'] / med[k]:.2f}× | "
              f"{med[f'{tower} mmpt {precision}'] / med[k]:.2f}× |")


if __name__ == "__main__":
    main()
