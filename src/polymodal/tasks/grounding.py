"""Does attention ground words in regions? (the lecture's VisualBERT layer-11 figure, measured)

For every layer and head of a single-stream region model, take each word of a caption that names a
value of an attribute (a shape, a colour), find the region its attention weighs most (among the real
regions, the whole-image region excluded), and count a hit when that region's object has that value.
Chance is the share of such regions among the object regions. (The world's shapes and colours:
:mod:`polymodal.world.grounding`.) Also :func:`word_region_map`: the word × region attention of one caption, per
layer and head, for ``polymodal attention``'s heat maps.
"""

from __future__ import annotations

import torch

from ..modalities.text import TextTokenizer


def attribute_word_ids(tokenizer: TextTokenizer, words: dict[str, str]) -> dict[int, str]:
    """Token id → the value it names, for ``words`` (word → value) that are one token each."""
    ids = {tokenizer.tokenizer.token_to_id(w): value for w, value in words.items()}
    return {i: value for i, value in ids.items() if i is not None}


@torch.no_grad()
def text_to_region_attention(model, ids: torch.Tensor, regions: torch.Tensor, attention_mask: torch.Tensor,
                             region_mask: torch.Tensor) -> torch.Tensor:
    """[layers, B, heads, L, R]: the attention each text token pays to each region (a row sums to the
    share of attention that went to regions, not to 1)."""
    out = model.forward_features(ids, regions, attention_mask, region_mask, need_weights=True)
    n = ids.shape[1]
    return torch.stack([a[:, :, :n, n:] for a in out["attentions"]])


@torch.no_grad()
def grounding_accuracy(model, data, region_values: list[list[str]], tokenizer: TextTokenizer,
                       words: dict[str, str], batch: int = 64) -> dict:
    """Per (layer, head), the fraction of the words of ``words`` (word → the value it names) whose
    most-attended object region has that value, and chance. ``data``:
    :class:`~polymodal.train.region_data.RegionCaptions` (regions: the whole image, then its objects),
    first paraphrases; ``region_values[i]``: the value of each object region of picture i, in order."""
    model.eval()
    named = attribute_word_ids(tokenizer, words)
    hits, words, chance = None, 0, 0.0
    for start in range(0, len(data), batch):
        idx = torch.arange(start, min(start + batch, len(data)))
        ids, mask = data.ids[idx, 0], data.mask[idx, 0]
        length = int(mask.sum(1).max())
        ids, mask = ids[:, :length], mask[:, :length]
        att = text_to_region_attention(model, ids, data.regions[idx], mask, data.region_mask[idx])
        if hits is None:
            hits = torch.zeros(att.shape[0], att.shape[2])
        for row, i in enumerate(idx.tolist()):
            values = region_values[i][:data.regions.shape[1] - 1]  # region k + 1 is object k
            real = int(data.region_mask[i].sum()) - 1
            if real < 2:
                continue  # one object region: nothing to choose between
            right = values[:real]
            for pos in range(length):
                value = named.get(int(ids[row, pos]))
                if value is None or value not in right:
                    continue
                best = att[:, row, :, pos, 1:1 + real].argmax(-1)  # [layers, heads], object regions only
                good = torch.tensor([v == value for v in right])
                hits += good[best].float()
                words += 1
                chance += float(good.float().mean())
    if not words:
        raise ValueError("no caption word names a value of its picture's object regions")
    out = {"words": words, "chance": chance / words}
    for layer in range(hits.shape[0]):
        for head in range(hits.shape[1]):
            out[f"layer{layer}_head{head}"] = float(hits[layer, head]) / words
    return out


@torch.no_grad()
def word_region_map(model, tokenizer: TextTokenizer, regions, text: str) -> tuple[list[str], torch.Tensor]:
    """(the caption's tokens, attention [layers, heads, L, R]) of one caption over one image's regions
    (``regions``: a :class:`~polymodal.data.regions.RegionFeatures` batch of one)."""
    tokens = tokenizer([text])
    n = int(tokens.attention_mask.sum())
    ids, mask = tokens.ids[:, :n], tokens.attention_mask[:, :n]
    att = text_to_region_attention(model, ids, regions.features, mask, regions.mask)[:, 0]
    words = [tokenizer.tokenizer.id_to_token(int(i)) for i in ids[0]]
    return words, att[..., :int(regions.mask.sum())]


def plot_word_region(words: list[str], attention: torch.Tensor, path, title: str = "") -> None:
    """One heat map per layer (rows) and head (columns): words × regions ("all" = the whole picture,
    then r1, r2, … the boxes), darker = more attention. ``attention`` [layers, heads, L, R]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers, heads, n, r = attention.shape
    fig, axes = plt.subplots(layers, heads, figsize=(1.1 * heads + 1, 0.22 * n * layers + 1), squeeze=False)
    top = float(attention.max()) or 1.0
    for layer in range(layers):
        for head in range(heads):
            ax = axes[layer][head]
            ax.imshow(attention[layer, head].numpy(), cmap="Greys", vmin=0, vmax=top, aspect="auto")
            ax.set_xticks(range(r), ["all", *(f"r{i}" for i in range(1, r))] if layer == layers - 1 else [""] * r,
                          fontsize=5)
            ax.set_yticks(range(n), words if head == 0 else [""] * n, fontsize=5)
            if layer == 0:
                ax.set_title(f"head {head}", fontsize=6)
            if head == 0:
                ax.set_ylabel(f"layer {layer}", fontsize=6)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
