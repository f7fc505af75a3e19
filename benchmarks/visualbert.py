"""VisualBERT speed: polymodal vs transformers' VisualBERT on the same weights, side by side.

    python benchmarks/visualbert.py [--batch 32] [--tokens 16] [--regions 36] [--steps 5] [--threads 2]

BERT-base over 2048-d regions (``visualbert-base``, the geometry of uclanlp/visualbert-vqa-coco-pre),
random weights made by ``transformers.VisualBertForPreTraining`` and loaded into ours from its saved
folder. Forward: HF ``VisualBertModel`` (its ``visual_bert`` trunk + pooler) vs our
``VisualBert.forward_features``, fp32 and bf16 autocast. Train step: both pretraining models (MLM +
sentence–image heads), masked-LM + matching cross-entropy, AdamW. Runs alternate in one process;
the median of ``--steps`` is reported. Memory: each job again in a fresh process that keeps only
the model it runs: its resident memory once the model is loaded, and the peak growth while the job
runs twice (sampled every 0.5 ms).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from timing import alternating_medians  # noqa: E402


def models(folder: str):
    """(hf VisualBertForPreTraining, ours) with the same weights, both saved/loaded through ``folder``."""
    import transformers

    import polymodal

    torch.manual_seed(0)
    config = transformers.VisualBertConfig(visual_embedding_dim=2048)  # BERT-base sizes
    hf = transformers.VisualBertForPreTraining(config)
    hf.save_pretrained(folder)
    return hf, polymodal.load(folder)


def inputs(batch: int, tokens: int, regions: int, vocab: int = 30522) -> dict:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1000, vocab, (batch, tokens), generator=g)
    mask = torch.ones(batch, tokens, dtype=torch.long)
    mask[batch // 2:, tokens * 3 // 4:] = 0  # half the rows padded, as real batches are
    feats = torch.randn(batch, regions, 2048, generator=g)
    labels = torch.where(torch.rand(batch, tokens, generator=g) < 0.15, ids, torch.full_like(ids, -100))
    labels = torch.cat([labels, torch.full((batch, regions), -100)], dim=1)
    return {"ids": ids, "mask": mask, "regions": feats, "region_mask": torch.ones(batch, regions, dtype=torch.long),
            "labels": labels, "itm": torch.randint(0, 2, (batch,), generator=g)}


def jobs(hf, ours, x: dict) -> dict:
    """name → a function running one forward or one training step."""
    bf16 = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
    opt = {"hf": torch.optim.AdamW(hf.parameters(), lr=1e-5), "ours": torch.optim.AdamW(ours.parameters(), lr=1e-5)}

    @torch.no_grad()
    def hf_forward(ctx=contextlib.nullcontext):
        hf.eval()
        with ctx():
            return hf.visual_bert(input_ids=x["ids"], attention_mask=x["mask"], visual_embeds=x["regions"],
                                  visual_attention_mask=x["region_mask"]).pooler_output

    @torch.no_grad()
    def ours_forward(ctx=contextlib.nullcontext):
        ours.eval()
        with ctx():
            return ours.forward_features(x["ids"], x["regions"], x["mask"], x["region_mask"])["pooled"]

    def step(name, logits_fn):
        def run():
            m = hf if name == "hf" else ours
            m.train()
            mlm, itm = logits_fn()
            loss = F.cross_entropy(mlm.flatten(0, 1).float(), x["labels"].flatten()) + F.cross_entropy(itm.float(), x["itm"])
            opt[name].zero_grad(set_to_none=True)
            loss.backward()
            opt[name].step()
        return run

    def hf_logits():
        out = hf(input_ids=x["ids"], attention_mask=x["mask"], visual_embeds=x["regions"],
                 visual_attention_mask=x["region_mask"])
        return out.prediction_logits, out.seq_relationship_logits

    def ours_logits():
        out = ours(x["ids"], x["regions"], x["mask"], x["region_mask"])
        return out["mlm_logits"], out["itm_logits"]

    return {"forward hf fp32": hf_forward, "forward ours fp32": ours_forward,
            "forward hf bf16": lambda: hf_forward(bf16), "forward ours bf16": lambda: ours_forward(bf16),
            "train hf fp32": step("hf", hf_logits), "train ours fp32": step("ours", ours_logits)}


def fresh_memory(job: str, args) -> dict:
    """{"loaded_mib", "peak_growth_mib"} of ``job`` in a new process holding only its own model."""
    cmd = [sys.executable, __file__, "--only", job, "--batch", str(args.batch), "--tokens", str(args.tokens),
           "--regions", str(args.regions), "--threads", str(args.threads)]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--regions", type=int, default=36)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = inputs(args.batch, args.tokens, args.regions)
    with tempfile.TemporaryDirectory() as tmp:
        hf, ours = models(tmp)
    if args.only:  # the fresh-process memory probe: only this job's model stays
        import gc

        sys.path.insert(0, str(Path(__file__).parent))
        from timing import _rss_kib, peak_rss_growth_mib

        keep_hf = args.only.split()[1] == "hf"
        hf, ours = (hf, torch.nn.Linear(1, 1)) if keep_hf else (torch.nn.Linear(1, 1), ours)
        gc.collect()
        job = jobs(hf, ours, x)[args.only]
        loaded = _rss_kib() / 1024
        growth = peak_rss_growth_mib(lambda: (job(), job()))
        print(json.dumps({"loaded_mib": loaded, "peak_growth_mib": growth}))
        return
    todo = jobs(hf, ours, x)
    with torch.no_grad():  # same weights, same outputs
        diff = (todo["forward hf fp32"]() - todo["forward ours fp32"]()).abs().max().item()
    med = alternating_medians(todo, args.steps)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, {args.tokens} tokens + "
          f"{args.regions} regions, visualbert-base (BERT-base, 2048-d regions), median of {args.steps}; "
          f"max |pooled ours − hf| fp32 = {diff:.1e}")
    print("| job | samples/s | vs HF fp32 | vs HF same precision | fresh process: RSS loaded / peak growth (MiB) |")
    print("|---|---|---|---|---|")
    for k in todo:
        kind, who, precision = k.split()
        ref_fp32, ref_same = med[f"{kind} hf fp32"], med.get(f"{kind} hf {precision}", med[f"{kind} hf fp32"])
        mem = fresh_memory(k, args)
        print(f"| {k} | {args.batch / med[k]:.1f} | {ref_fp32 / med[k]:.2f}× | {ref_same / med[k]:.2f}× | "
              f"{mem['loaded_mib']:.0f} / {mem['peak_growth_mib']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
