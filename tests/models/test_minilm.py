"""Our BERT tower + WordPiece tokenizer reproduce sentence-transformers' all-MiniLM-L6-v2 embeddings."""

import torch
import torch.nn.functional as F

import polymodal
from polymodal.modalities.text import load_tokenizer

SENTENCES = [
    "A photo of a red cube next to a small blue sphere.",
    "Invoice number 1234, total due: $56.78",
    "short",
    "Zwei grüne Kegel stehen hinter einem großen gelben Würfel — naïve café façade!",
]


def test_minilm_matches_sentence_transformers(minilm_dir):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(minilm_dir), device="cpu")
    expected = reference.encode(SENTENCES, convert_to_tensor=True, batch_size=8)

    model = polymodal.load(minilm_dir)
    assert model.config.pooling == "mean" and model.config.layers == 6 and model.config.width == 384
    tokenizer = load_tokenizer(minilm_dir)
    assert tokenizer.context_length == 256
    batch = tokenizer(SENTENCES)
    with torch.no_grad():
        ours = F.normalize(model(batch.ids, batch.attention_mask), dim=-1)
    assert (ours - expected).abs().max().item() <= 1e-5


def test_minilm_as_clip_text_tower(minilm_dir):
    """The packaged weights fill the text tower of a CLIP preset; only its projection stays new."""
    clip = polymodal.create("clip-minilm-tiny")
    report = polymodal.weights.load_weights_into(clip.text, minilm_dir, strict=False)
    assert report.missing == ["proj.weight"] and report.unexpected == []
    reference = polymodal.load(minilm_dir)
    torch.testing.assert_close(clip.text.stem.word.weight, reference.stem.word.weight)
