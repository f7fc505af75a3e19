"""Tokenizers: CLIP BPE (vocab.json + merges.txt and OpenAI's .txt.gz) against an independent
re-statement of OpenAI's BPE and against transformers; WordPiece; training; explicit truncation."""

import gzip
import json

import pytest
import regex
import transformers

from polymodal.modalities.text import (TruncationError, bytes_to_unicode, clip_tokenizer, load_tokenizer,
                                       train_tokenizer, wordpiece_tokenizer)

CORPUS = [
    "a photo of a red cube next to two small blue spheres",
    "the green cone is behind the large yellow cylinder",
    "an invoice from ACME corp, total due 1234.56 dollars",
    "three purple toruses on a wooden table, seen from above",
    "it's a dog's life; they're sure we've seen what I'd call 42 cats",
] * 20
TEXTS = ["A photo of a RED cube!", "two   small\tblue spheres", "they're 1234 purple cats; it's wooden",
         "ünïcode façade naïve", "zebra xylophone quokka"]


class ReferenceBPE:
    """OpenAI's SimpleTokenizer algorithm (regex split, byte encoding, rank-ordered merges)."""

    def __init__(self, gz_path):
        merges = gzip.open(gz_path, "rt", encoding="utf-8").read().split("\n")[1:]
        merges = [tuple(m.split()) for m in merges if m.strip()]
        symbols = list(bytes_to_unicode().values())
        vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
        self.encoder = {t: i for i, t in enumerate(vocab)}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.pat = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""", regex.IGNORECASE)

    def bpe(self, token):
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        while len(word) > 1:
            pairs = {(a, b) for a, b in zip(word, word[1:])}
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
        return word

    def encode(self, text):
        import unicodedata

        text = regex.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).strip().lower()
        b2u = bytes_to_unicode()
        ids = [self.encoder["<|startoftext|>"]]
        for token in self.pat.findall(text):
            ids += [self.encoder[t] for t in self.bpe("".join(b2u[b] for b in token.encode("utf-8")))]
        return ids + [self.encoder["<|endoftext|>"]]


@pytest.fixture(scope="module")
def bpe_files(tmp_path_factory):
    """A small CLIP vocabulary written in both formats."""
    folder = tmp_path_factory.mktemp("clip_bpe")
    trained = train_tokenizer(CORPUS, kind="clip", vocab_size=700, context_length=32)
    model = json.loads(trained.tokenizer.to_str())["model"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    with gzip.open(folder / "bpe_simple_vocab_16e6.txt.gz", "wt", encoding="utf-8") as f:
        f.write("#version: test\n" + "\n".join(merges) + "\n")
    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    hf = folder / "hf"
    hf.mkdir()
    (hf / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (hf / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return folder


def test_clip_bpe_gz_matches_openai_algorithm(bpe_files):
    gz = bpe_files / "bpe_simple_vocab_16e6.txt.gz"
    ours = clip_tokenizer(gz, context_length=32)
    reference = ReferenceBPE(gz)
    batch = ours(TEXTS)
    for row, text in enumerate(TEXTS):
        want = reference.encode(text)
        assert batch.ids[row, : len(want)].tolist() == want, text
        assert batch.attention_mask[row].sum().item() == len(want)
    assert ours.eot_id == ours.vocab_size - 1  # EOT is the largest id, so argmax pooling finds it


def test_clip_vocab_json_merges_equals_gz_and_transformers(bpe_files):
    from_json = clip_tokenizer(bpe_files / "hf", context_length=32)
    from_gz = clip_tokenizer(bpe_files / "bpe_simple_vocab_16e6.txt.gz", context_length=32)
    assert from_json(TEXTS).ids.tolist() == from_gz(TEXTS).ids.tolist()
    hf = transformers.CLIPTokenizer.from_pretrained(str(bpe_files / "hf"))
    for text in TEXTS:
        want = hf(text)["input_ids"]
        assert from_json(text).ids[0, : len(want)].tolist() == want


def test_truncation_is_explicit_and_reported(bpe_files):
    tok = clip_tokenizer(bpe_files / "hf", context_length=8)
    long = "a photo of a red cube next to two small blue spheres"
    with pytest.raises(TruncationError, match=r"#1 \(\d+ tokens"):
        tok(["short", long])
    with pytest.warns(UserWarning, match=r"rows \[1\]"):
        batch = tok(["short", long], truncate=True)
    assert batch.truncated == [1]
    assert batch.ids.shape == (2, 8)
    assert batch.ids[1, -1].item() == tok.eot_id  # the end token survives the cut


def test_wordpiece_from_vocab_txt_matches_bert_tokenizer(minilm_dir, tmp_path):
    ours = wordpiece_tokenizer(minilm_dir / "vocab.txt", context_length=64)
    (tmp_path / "vocab.txt").write_bytes((minilm_dir / "vocab.txt").read_bytes())
    reference = transformers.BertTokenizer.from_pretrained(str(tmp_path), do_lower_case=True)
    for text in TEXTS:
        want = reference(text)["input_ids"]
        assert ours(text).ids[0].tolist() == want


def test_trained_wordpiece_roundtrip_and_saved_tokenizer(tmp_path):
    tok = train_tokenizer(CORPUS, kind="wordpiece", vocab_size=300, context_length=24)
    batch = tok(["a red cube", "two blue spheres behind the cone"])
    assert batch.ids[0, 0].item() == tok.tokenizer.token_to_id("[CLS]")
    assert tok.decode(batch.ids[0].tolist()) == "a red cube"
    tok.save(tmp_path)
    again = load_tokenizer(tmp_path)
    assert again.context_length == 24 and again(["a red cube"]).ids.tolist() == tok(["a red cube"]).ids.tolist()
