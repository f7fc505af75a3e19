"""Tokenizers built on HF ``tokenizers``: CLIP byte-level BPE, BERT WordPiece, and training
either from a corpus for from-scratch models.

Truncation is explicit: text longer than the context raises :class:`TruncationError` unless
``truncate=True``, and then the cut rows are listed in ``TokenBatch.truncated`` and warned about.
"""

from __future__ import annotations

import gzip
import json
import os
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from tokenizers.implementations import BertWordPieceTokenizer

from ..fileio import copy_inside, read_inside
from .registry import Modality, register_modality

SOT, EOT = "<|startoftext|>", "<|endoftext|>"
# CLIP's pre-tokenisation pattern (contractions, letter runs, single digits, other symbols).
CLIP_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
META_FILE = "polymodal_tokenizer.json"
# The files a tokenizer is read from (any one of them makes a folder hold a tokenizer) ...
VOCABULARY_FILES = ("tokenizer.json", "vocab.json", "vocab.txt", "bpe_simple_vocab_16e6.txt.gz")
# ... and everything that travels with it beside a model (BPE vocab.json with its merges.txt; ours with
# its metadata file, which says its kind and context).
TOKENIZER_FILES = (*VOCABULARY_FILES, META_FILE, "merges.txt", "special_tokens_map.json", "tokenizer_config.json",
                   "sentence_bert_config.json")


class TruncationError(ValueError):
    """A text does not fit the context length and truncation was not asked for."""


@dataclass
class TokenBatch:
    ids: torch.Tensor  # [B, L] int64
    attention_mask: torch.Tensor  # [B, L] int64, 1 = token, 0 = padding
    truncated: list[int] = field(default_factory=list)  # rows that were cut to fit


@lru_cache
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte → printable unicode character table (byte order matters:
    it fixes the first 256 vocabulary ids of the ``bpe_simple_vocab_16e6`` format)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


class TextTokenizer:
    """A ``tokenizers.Tokenizer`` plus the context length and special ids a text tower needs.

    Args:
        tokenizer: adds its own special tokens (``<|startoftext|>``/``<|endoftext|>`` or
            ``[CLS]``/``[SEP]``) through its post-processor.
        context_length: L; every batch is padded to it (``pad_to="context"``) or to its longest row.
        kind: ``"clip"`` or ``"wordpiece"`` (recorded when saved).
    """

    def __init__(self, tokenizer: Tokenizer, context_length: int, kind: str, pad_to: str = "context"):
        self.tokenizer, self.context_length, self.kind, self.pad_to = tokenizer, context_length, kind, pad_to
        end = EOT if kind == "clip" else "[SEP]"
        self.eot_id = tokenizer.token_to_id(end)
        self.pad_id = 0 if kind == "clip" else tokenizer.token_to_id("[PAD]")
        if self.eot_id is None or self.pad_id is None:
            raise ValueError(f"{kind} tokenizer lacks its special tokens ({end}, pad)")

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def __call__(self, texts: str | list[str], truncate: bool = False) -> TokenBatch:
        """Texts → :class:`TokenBatch` with ids/mask [B, L]."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        encoded = [e.ids for e in self.tokenizer.encode_batch(texts)]
        too_long = [i for i, ids in enumerate(encoded) if len(ids) > self.context_length]
        if too_long and not truncate:
            detail = ", ".join(f"#{i} ({len(encoded[i])} tokens: {texts[i][:40]!r})" for i in too_long[:5])
            raise TruncationError(f"{len(too_long)} text(s) exceed the context length {self.context_length}: "
                                  f"{detail}; pass truncate=True to cut them")
        for i in too_long:
            # Keep the closing special token: towers pool there.
            encoded[i] = encoded[i][: self.context_length - 1] + [encoded[i][-1]]
        if too_long:
            rows = ", ".join(map(str, too_long[:20])) + (f", … ({len(too_long) - 20} more)" if len(too_long) > 20 else "")
            warnings.warn(f"truncated {len(too_long)} text(s) to {self.context_length} tokens: rows [{rows}]",
                          stacklevel=2)
        width = self.context_length if self.pad_to == "context" else max(len(e) for e in encoded)
        ids = torch.full((len(texts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(texts), width), dtype=torch.long)
        for row, e in enumerate(encoded):
            ids[row, : len(e)] = torch.tensor(e, dtype=torch.long)
            mask[row, : len(e)] = 1
        return TokenBatch(ids, mask, too_long)

    def decode(self, ids: list[int]) -> str:
        """Ids of one row → text (CLIP: up to the end-of-text token, ``</w>`` → space)."""
        if self.kind != "clip":
            return self.tokenizer.decode(ids, skip_special_tokens=True)
        ids = list(ids)
        ids = ids[: ids.index(self.eot_id)] if self.eot_id in ids else ids
        text = "".join(self.tokenizer.id_to_token(i) or "" for i in ids).replace(SOT, "")
        byte_of = {c: b for b, c in bytes_to_unicode().items()}
        words = text.split("</w>")
        return " ".join(bytes(byte_of[c] for c in w if c in byte_of).decode("utf-8", "replace") for w in words).strip()

    def save(self, folder: str | Path) -> None:
        """Write ``tokenizer.json`` and our small metadata file into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(str(folder / "tokenizer.json"))
        meta = {"kind": self.kind, "context_length": self.context_length, "pad_to": self.pad_to}
        (folder / META_FILE).write_text(json.dumps(meta))


# --------------------------------------------------------------------------- CLIP BPE


def _clip_pipeline(tok: Tokenizer) -> Tokenizer:
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "),
                                           normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(CLIP_PATTERN), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    return tok


def _clip_post_processor(tok: Tokenizer) -> Tokenizer:
    tok.post_processor = processors.TemplateProcessing(
        single=f"{SOT} $A {EOT}", special_tokens=[(SOT, tok.token_to_id(SOT)), (EOT, tok.token_to_id(EOT))])
    return tok


def read_clip_bpe_gz(path: str | Path) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """OpenAI's ``bpe_simple_vocab_16e6.txt.gz`` → (vocab, merges), built as OpenAI's
    ``SimpleTokenizer`` does: 256 byte symbols, the same with ``</w>``, one entry per merge,
    then ``<|startoftext|>`` and ``<|endoftext|>`` (the largest id)."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = [tuple(m.split()) for m in lines[1: 49152 - 256 - 2 + 1] if m.strip()]
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [SOT, EOT]
    return {t: i for i, t in enumerate(tokens)}, merges


def clip_tokenizer(path: str | Path, context_length: int = 77) -> TextTokenizer:
    """CLIP's byte-level BPE from ``vocab.json`` + ``merges.txt``, ``bpe_simple_vocab_16e6.txt.gz``
    or a ``tokenizer.json``; ``path`` is one of those files or a folder holding them."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if path.is_file() and path.name.endswith(".json") and path.name != "vocab.json":
        return TextTokenizer(Tokenizer.from_file(str(path)), context_length, "clip")
    gz = path if path.suffix == ".gz" else next(iter(sorted(folder.glob("*.txt.gz"))), None)
    if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        lines = (folder / "merges.txt").read_text(encoding="utf-8").split("\n")
        merges = [tuple(m.split()) for m in lines if m.strip() and not m.startswith("#version")]
    elif gz is not None and gz.is_file():
        vocab, merges = read_clip_bpe_gz(gz)
    elif (folder / "tokenizer.json").is_file():
        return TextTokenizer(Tokenizer.from_file(str(folder / "tokenizer.json")), context_length, "clip")
    else:
        raise FileNotFoundError(f"no CLIP tokenizer files (vocab.json+merges.txt, *.txt.gz, tokenizer.json) in {folder}")
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=EOT, continuing_subword_prefix="",
                               end_of_word_suffix="</w>", fuse_unk=False))
    return TextTokenizer(_clip_post_processor(_clip_pipeline(tok)), context_length, "clip")


# --------------------------------------------------------------------------- WordPiece


def wordpiece_tokenizer(path: str | Path, context_length: int = 512, lowercase: bool = True,
                        pad_to: str = "longest") -> TextTokenizer:
    """BERT WordPiece from ``tokenizer.json`` (preferred) or ``vocab.txt``, file or folder."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if path.name == "tokenizer.json" or (path.is_dir() and (folder / "tokenizer.json").is_file()):
        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tok.no_truncation()
        tok.no_padding()
    else:
        vocab = path if path.is_file() else folder / "vocab.txt"
        if not vocab.is_file():
            raise FileNotFoundError(f"no vocab.txt or tokenizer.json in {folder}")
        tok = BertWordPieceTokenizer(str(vocab), lowercase=lowercase)._tokenizer
    return TextTokenizer(tok, context_length, "wordpiece", pad_to=pad_to)


# --------------------------------------------------------------------------- training


def train_tokenizer(texts: Iterable[str], kind: str = "clip", vocab_size: int = 4096,
                    context_length: int = 77, min_frequency: int = 1) -> TextTokenizer:
    """Train a tokenizer on a corpus for a from-scratch model.

    ``kind="clip"``: byte-level BPE with CLIP's normaliser and pre-tokeniser; ``<|endoftext|>``
    is the largest id, as in OpenAI's vocabulary. ``kind="wordpiece"``: BERT's WordPiece, [PAD] = 0.
    """
    if kind == "clip":
        tok = _clip_pipeline(Tokenizer(models.BPE(unk_token=EOT, end_of_word_suffix="</w>", fuse_unk=False)))
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                      special_tokens=[EOT, SOT], end_of_word_suffix="</w>",
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        tok.train_from_iterator(texts, trainer)
        # Renumber so that SOT/EOT are the last two ids, as in OpenAI's vocabulary: then
        # argmax-of-id pooling finds EOT, and pad id 0 is an ordinary token.
        model = json.loads(tok.to_str())["model"]
        ordinary = [t for _, t in sorted((i, t) for t, i in model["vocab"].items() if t not in (SOT, EOT))]
        # Every byte must be encodable at the end of a word too, as in OpenAI's vocabulary.
        symbols = list(bytes_to_unicode().values())
        present = set(ordinary)
        ordinary += [t for t in symbols + [s + "</w>" for s in symbols] if t not in present]
        vocab = {t: n for n, t in enumerate(ordinary)}
        vocab.update({SOT: len(vocab), EOT: len(vocab) + 1})
        merges = [tuple(m.split()) if isinstance(m, str) else tuple(m) for m in model["merges"]]
        tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=EOT, continuing_subword_prefix="",
                                   end_of_word_suffix="</w>", fuse_unk=False))
        return TextTokenizer(_clip_post_processor(_clip_pipeline(tok)), context_length, "clip")
    if kind == "wordpiece":
        wp = BertWordPieceTokenizer(lowercase=True)
        wp.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
                               special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
        tok = wp._tokenizer
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
        return TextTokenizer(tok, context_length, "wordpiece", pad_to="longest")
    raise ValueError(f"unknown tokenizer kind {kind!r}: 'clip' or 'wordpiece'")


def load_tokenizer(folder: str | Path, context_length: int | None = None) -> TextTokenizer:
    """A tokenizer saved by :meth:`TextTokenizer.save`, or detected from the files in ``folder``."""
    folder = Path(folder)
    meta_file = folder / META_FILE
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        return TextTokenizer(tok, context_length or meta["context_length"], meta["kind"], meta.get("pad_to", "context"))
    if (folder / "vocab.txt").is_file():
        st_config = folder / "sentence_bert_config.json"  # sentence-transformers' max_seq_length
        default = json.loads(st_config.read_text()).get("max_seq_length", 512) if st_config.is_file() else 512
        return wordpiece_tokenizer(folder, context_length or default)
    return clip_tokenizer(folder, context_length or 77)


MAX_TEXT_CHARS = 2000  # of a text file embedded as one query or item


def read_utf8_prefix(path: Path, limit: int) -> str:
    """The first ``limit`` bytes of a file as UTF-8 text; a character cut at the limit is dropped,
    an invalid byte anywhere raises ``UnicodeDecodeError``."""
    import codecs

    with open(path, "rb") as f:
        return codecs.getincrementaldecoder("utf-8")().decode(f.read(limit), final=False)


def _read(path: Path, processor) -> str:
    return read_utf8_prefix(Path(path), 4 * MAX_TEXT_CHARS)[:MAX_TEXT_CHARS]


register_modality(Modality("text", encoder="text", sample_dims=1, read=_read, processing=()))


def tokenizer_files(source: Path | None) -> list[str]:
    """The tokenizer files ``source`` holds, each checked to be a regular file inside it (a link out of
    the folder, a FIFO or a device is refused by name): call before any work that would be lost."""
    found = [name for name in TOKENIZER_FILES if source is not None and os.path.lexists(source / name)]
    for name in found:
        read_inside(source, name)
    return found


def copy_tokenizer(source: Path | None, out: Path) -> None:
    """Copy the tokenizer files found in ``source`` (if any) into ``out``: regular files inside
    ``source`` only, never what a link points to."""
    for name in tokenizer_files(source):
        copy_inside(source, name, out)
