"""What limits a world CLIP's text→image retrieval: where the top-1 goes wrong, and whether the
image embedding carries shape at all.

    python scripts/diagnose_world_clip.py RUN/model [--split val] [--n 1000]

Prints R@1 by number of objects, the share of top-1 images that fit the caption (a tie a perfect
model could not break, see polymodal.world.recipes.caption_ceiling) and what differs in the rest (place,
count, shape, colour, which colour goes with which shape, size/relation), then a linear probe of
the object's shape from image and from text embeddings of single-object scenes (train → val).
"""

from __future__ import annotations

import argparse
from collections import Counter

import torch
import torch.nn.functional as F

import polymodal
from polymodal.world.captions import WHERE, captions
from polymodal.world.render import render
from polymodal.world.scene import SHAPES, sample_scene
from polymodal.world.recipes.caption_ceiling import fits
from polymodal.modalities.text import load_tokenizer
from polymodal.train.data import normalize
from polymodal.world.pictures import world_captions


@torch.no_grad()
def embed(model, tokenizer, images: torch.Tensor, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    img = torch.cat([F.normalize(model.encode_image(normalize(images[i:i + 250])), dim=-1)
                     for i in range(0, len(images), 250)])
    tok = tokenizer(texts, truncate=True)
    txt = torch.cat([F.normalize(model.encode_text(tok.ids[i:i + 250], tok.attention_mask[i:i + 250]), dim=-1)
                     for i in range(0, len(texts), 250)])
    return img, txt


def difference(a, b) -> str:
    if a.place != b.place:
        return "place"
    if len(a.objects) != len(b.objects):
        return "count"
    if Counter(o.shape for o in a.objects) != Counter(o.shape for o in b.objects):
        return "shape"
    if Counter(o.colour for o in a.objects) != Counter(o.colour for o in b.objects):
        return "colour"
    if Counter((o.colour, o.shape) for o in a.objects) != Counter((o.colour, o.shape) for o in b.objects):
        return "binding"
    return "size/relation"


def probe(train_x, train_y, val_x, val_y, classes: int, steps: int = 500) -> tuple[float, float]:
    """Multinomial logistic regression on standardised features: (train, val) accuracy."""
    mu, sd = train_x.mean(0), train_x.std(0).clamp(min=1e-6)
    a, b = (train_x - mu) / sd, (val_x - mu) / sd
    w = torch.zeros(a.shape[1], classes, requires_grad=True)
    bias = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.Adam([w, bias], lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        (F.cross_entropy(a @ w + bias, train_y) + 1e-4 * (w ** 2).sum()).backward()
        opt.step()
    with torch.no_grad():
        return (((a @ w + bias).argmax(1) == train_y).float().mean().item(),
                ((b @ w + bias).argmax(1) == val_y).float().mean().item())


def singles(split: str, n: int):
    images, labels, texts, i = [], [], [], 0
    while len(labels) < n:
        scene = sample_scene(0, split, i)
        i += 1
        if len(scene.objects) == 1:
            o = scene.objects[0]
            images.append(torch.from_numpy(render(scene, 64).image).permute(2, 0, 1))
            labels.append(SHAPES.index(o.shape))
            texts.append(f"a {o.colour} {o.shape} {WHERE[scene.place]}.")
    return torch.stack(images), torch.tensor(labels), texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--split", default="val")
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    model = polymodal.load(args.model).eval()
    tokenizer = load_tokenizer(args.model, 64)
    images, texts = world_captions(args.split, args.n, 0, 64)
    img, txt = embed(model, tokenizer, images, [t[0] for t in texts])
    top = (txt @ img.T).argmax(1)
    scenes = [sample_scene(0, args.split, i) for i in range(args.n)]
    caps = [captions(s)[0] for s in scenes]
    hit = top == torch.arange(args.n)
    print(f"text→image R@1 {hit.float().mean():.3f} on {args.n} {args.split} scenes")
    by_count = Counter(len(s.objects) for s in scenes)
    for k in sorted(by_count):
        rows = [i for i, s in enumerate(scenes) if len(s.objects) == k]
        print(f"  {k} object(s): R@1 {hit[rows].float().mean():.3f} ({len(rows)} scenes)")
    fit = [fits(caps[i], scenes[i], scenes[int(top[i])]) for i in range(args.n)]
    misses = [i for i in range(args.n) if not hit[i]]
    print(f"misses {len(misses)}: top-1 fits the caption {sum(fit[i] for i in misses)}; the others differ in "
          f"{dict(Counter(difference(scenes[i], scenes[int(top[i])]) for i in misses if not fit[i]))}")
    tx, ty, tt = singles("train", 3000)
    vx, vy, vt = singles("val", 600)
    for name, (a, b) in {"image": (embed(model, tokenizer, tx, tt)[0], embed(model, tokenizer, vx, vt)[0]),
                         "text": (embed(model, tokenizer, tx, tt)[1], embed(model, tokenizer, vx, vt)[1])}.items():
        train_acc, val_acc = probe(a, ty, b, vy, len(SHAPES))
        print(f"shape probe on {name} embeddings: train {train_acc:.3f} / val {val_acc:.3f} "
              f"(majority {torch.bincount(vy).max().item() / len(vy):.3f})")


if __name__ == "__main__":
    main()
