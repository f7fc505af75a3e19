"""LayoutLMv3 speed: polymodal vs transformers' ``LayoutLMv3Model`` on the same weights, side by side;
and ``polymodal doc extract`` end to end (OCR included) on a 10-page PDF.

    python benchmarks/layoutlm.py [--batch 8] [--tokens 512] [--steps 5] [--threads 2] [--pdf-pages 10]
                                  [--profile] [--attention] [--no-forward]

LayoutLMv3-base geometry (``layoutlmv3-base``: 12 layers of 768, 224² pages in 16² patches, 512 words
+ 197 visual tokens), random weights made by ``transformers.LayoutLMv3Model`` and loaded into ours
from its saved folder. Forward in fp32 and bf16 autocast; the runs alternate in one process and the
median of ``--steps`` is reported. End to end: ``world documents --pdf`` pages merged into one image
PDF, read (render + Tesseract) and tagged by a ``layoutlmv2-small`` entity model, pages per second.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from timing import alternating_medians  # noqa: E402


def models(folder: str):
    import transformers

    import polymodal

    torch.manual_seed(0)
    # base sizes; 514 positions as microsoft/layoutlmv3-base has them (512 words + RoBERTa's offset of 2)
    hf = transformers.LayoutLMv3Model(transformers.LayoutLMv3Config(max_position_embeddings=514)).eval()
    hf.save_pretrained(folder)
    return hf, polymodal.load(folder).eval()


def inputs(batch: int, tokens: int) -> dict:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 50265, (batch, tokens), generator=g)
    ids[:, 0], ids[:, -1] = 0, 2
    x0 = torch.randint(0, 900, (batch, tokens), generator=g)
    y0 = torch.randint(0, 980, (batch, tokens), generator=g)
    boxes = torch.stack([x0, y0, x0 + torch.randint(5, 100, (batch, tokens), generator=g), y0 + 12], dim=-1)
    mask = torch.ones(batch, tokens, dtype=torch.long)
    return {"ids": ids, "boxes": boxes, "mask": mask, "pixels": torch.randn(batch, 3, 224, 224, generator=g)}


def jobs(hf, ours, x: dict) -> dict:
    """HF as its users run it in fp32 and bf16 (autocast, and bf16 weights), ours as
    ``DocumentModel.from_folder`` runs it: weights in the dtype, linears on this machine's faster path."""
    import copy

    from polymodal.layers.cpu_path import set_linear_path

    hf_bf16 = copy.deepcopy(hf).to(torch.bfloat16)
    ours_bf16 = copy.deepcopy(ours).to(torch.bfloat16)
    paths = {"fp32": set_linear_path(ours), "bf16": set_linear_path(ours_bf16)}
    print(f"# our linear path: fp32 {paths['fp32']}, bf16 {paths['bf16']}")
    pixels16 = x["pixels"].to(torch.bfloat16)

    @torch.inference_mode()
    def hf_forward(model=hf, pixels=x["pixels"], ctx=contextlib.nullcontext):
        with ctx():
            return model(input_ids=x["ids"], bbox=x["boxes"], attention_mask=x["mask"], pixel_values=pixels).last_hidden_state

    @torch.inference_mode()
    def ours_forward(model=ours, pixels=x["pixels"]):
        return model(x["ids"], x["boxes"], pixels, x["mask"])["hidden"]

    return {"forward hf fp32": hf_forward, "forward ours fp32": ours_forward,
            "forward hf bf16 autocast": lambda: hf_forward(ctx=lambda: torch.autocast("cpu", dtype=torch.bfloat16)),
            "forward hf bf16 weights": lambda: hf_forward(hf_bf16, pixels16),
            "forward ours bf16": lambda: ours_forward(ours_bf16, pixels16)}


def end_to_end(pages: int, threads: int, page_workers: int | None = None) -> dict:
    """Pages per second of reading a ``pages``-page image PDF with Tesseract (its pages side by side,
    one process per core) and extracting its entities with an (untrained) layoutlmv2-small entity
    model, warmed up on one page first — the cost of ``doc extract``."""
    from PIL import Image

    from polymodal.world.documents import render_document
    from polymodal.documents import TesseractOCR, read_document
    from polymodal.documents.processor import DocumentProcessor, default_tokenizer
    from polymodal.models.document_tasks import DocumentTaskConfig
    from polymodal.registry import build, preset
    from polymodal.tasks.documents import DocumentModel, DocumentPage

    with tempfile.TemporaryDirectory() as tmp:
        images = [Image.fromarray(render_document(0, "test", i).image) for i in range(pages)]
        pdf = Path(tmp) / "ten.pdf"
        images[0].save(pdf, save_all=True, append_images=images[1:], resolution=72)
        trunk = preset("layoutlmv2-small")
        model = build(DocumentTaskConfig(trunk, "entities", 7))
        doc = DocumentModel(model, DocumentProcessor.for_model(trunk, default_tokenizer()), ["O"] * 7)
        first = images[0]
        doc.extract(DocumentPage(["warm", "up"], torch.tensor([[0, 0, 9, 9], [10, 0, 19, 9]]).numpy(), first.width,
                                 first.height, first))  # torch's one-time start-up is not the pages' cost
        t0 = time.perf_counter()
        ocr = TesseractOCR()
        if page_workers:
            ocr.page_workers = page_workers
        read = read_document(pdf, dpi=150, ocr=ocr)
        t1 = time.perf_counter()
        for page in read:
            doc.extract(DocumentPage.of(page))
        t2 = time.perf_counter()
    return {"pages": len(read), "read_ocr_s": t1 - t0, "model_s": t2 - t1, "pages_per_s": len(read) / (t2 - t0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pdf-pages", type=int, default=10)
    parser.add_argument("--page-workers", type=int, default=None,
                        help="pages Tesseract reads at a time (default: one per core)")
    parser.add_argument("--no-forward", action="store_true", help="skip the forward comparison: only --attention and the end-to-end pages/s")
    parser.add_argument("--profile", action="store_true", help="also where our bf16 forward's time goes")
    parser.add_argument("--attention", action="store_true",
                        help="also one layer's attention core at the forward's shape: ours vs one pass vs SDPA")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from polymodal.layers.cpu_path import cpu_name

    if args.no_forward:
        if args.attention:
            attention_report(args.batch, args.tokens + 197, args.steps)
        return end_to_end_report(args)
    with tempfile.TemporaryDirectory() as tmp:
        hf, ours = models(tmp)
    x = inputs(args.batch, args.tokens)
    with torch.inference_mode():
        reference = hf(input_ids=x["ids"], bbox=x["boxes"], attention_mask=x["mask"], pixel_values=x["pixels"])
        diff = (reference.last_hidden_state - ours(x["ids"], x["boxes"], x["pixels"], x["mask"])["hidden"]).abs().max()
    run = jobs(hf, ours, x)
    with torch.inference_mode():
        diff16 = (reference.last_hidden_state - run["forward ours bf16"]().float()).abs().max()
    t = alternating_medians(run, args.steps)
    print(f"# LayoutLMv3-base forward, batch {args.batch} × ({args.tokens} tokens + 197 visual), "
          f"{args.threads} threads, {cpu_name()}; max |hf − ours| fp32 {diff:.1e}, bf16 {diff16:.1e}")
    print("| precision | HF s | ours s | HF / ours |")
    print("|---|---|---|---|")
    hf32, o32 = t["forward hf fp32"], t["forward ours fp32"]
    print(f"| fp32 | {hf32:.3f} | {o32:.3f} | {hf32 / o32:.2f}× |")
    for how in ("autocast", "weights"):
        h, o = t[f"forward hf bf16 {how}"], t["forward ours bf16"]
        print(f"| bf16 (HF: {how}) | {h:.3f} | {o:.3f} | {h / o:.2f}× |")
    if args.profile:
        profile(run["forward ours bf16"], x)
    if args.attention:
        attention_report(args.batch, args.tokens + 197, args.steps)
    end_to_end_report(args)


def profile(forward, x: dict) -> None:
    """Our bf16 forward's time by kind of op (torch.profiler, one call after the timed runs), with
    the GFLOP/s of the linears and of attention from their FLOP counts."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as p:
        forward()
    groups = {"linears": ("mkldnn::_linear_pointwise", "aten::addmm", "aten::mm"),
              "attention": ("aten::baddbmm", "aten::bmm", "aten::_softmax",
                            "aten::_scaled_dot_product_flash_attention_for_cpu")}
    seconds = {"linears": 0.0, "attention": 0.0, "other": 0.0}
    for e in p.key_averages():
        kind = next((k for k, names in groups.items() if e.key in names), "other")
        seconds[kind] += e.self_cpu_time_total / 1e6
    b, n = x["ids"].shape
    tokens, width, layers = b * (n + 197), 768, 12
    flops = {"linears": 2 * tokens * layers * (4 * width * width + 2 * width * 3072),
             "attention": 4 * b * layers * (n + 197) ** 2 * width}
    print("\n# where our bf16 forward's time goes (torch.profiler, one call)")
    print("| ops | s | GFLOP/s |")
    print("|---|---|---|")
    for kind, t in seconds.items():
        rate = f"{flops[kind] / t / 1e9:.0f}" if kind in flops and t else "—"
        print(f"| {kind} | {t:.2f} | {rate} |")


def attention_report(batch: int, n: int, steps: int) -> None:
    """softmax(q kᵀ/√d + bias) v for one layer of LayoutLMv3-base (12 heads of 64, a dense bias
    [B, 12, N, N]): ours (``_dense_bias_attention``, a few heads per step), the same ops over all
    (batch, head) pairs at once, and SDPA with the bias as its mask."""
    import torch.nn.functional as F

    from polymodal.layers import attention

    def one_pass(q, k, v, bias):
        b, h, _, d = q.shape
        logits = torch.baddbmm(bias.reshape(b * h, n, n), q.reshape(b * h, n, d),
                               k.reshape(b * h, n, d).transpose(1, 2), alpha=d ** -0.5)
        return torch.bmm(torch.softmax(logits, -1, out=logits), v.reshape(b * h, n, d))

    g = torch.Generator().manual_seed(2)
    flop = 4 * batch * 12 * n * n * 64
    print(f"\n# one layer's attention core, batch {batch} × 12 heads × {n}² with a dense bias (median of {steps})")
    print("| dtype | ours (heads in steps) ms | one pass ms | SDPA ms | ours GFLOP/s |")
    print("|---|---|---|---|---|")
    for dtype in (torch.bfloat16, torch.float32):
        q, k, v = (torch.randn(batch, 12, n, 64, generator=g).to(dtype) for _ in range(3))
        bias = torch.randn(batch, 12, n, n, generator=g).to(dtype)
        run = {"ours": lambda: attention._dense_bias_attention(q, k, v, bias), "one pass": lambda: one_pass(q, k, v, bias),
               "sdpa": lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=bias)}
        with torch.inference_mode():
            t = alternating_medians(run, steps)
        print(f"| {str(dtype).split('.')[-1]} | {1e3 * t['ours']:.1f} | {1e3 * t['one pass']:.1f} | {1e3 * t['sdpa']:.1f} "
              f"| {flop / t['ours'] / 1e9:.0f} |")


def end_to_end_report(args) -> None:
    if args.pdf_pages:
        e = end_to_end(args.pdf_pages, args.threads, args.page_workers)
        print(f"\n# doc extract end to end: {e['pages']}-page image PDF, 150 dpi, Tesseract + layoutlmv2-small")
        print(f"read + OCR {e['read_ocr_s']:.2f} s, model {e['model_s']:.2f} s → {e['pages_per_s']:.2f} pages/s")


if __name__ == "__main__":
    main()
