"""vilbert-multi-task ``BertForMultiModalPreTraining`` layout (``bert.*``, ``cls.*``): BERT text
layers, ``v_layer`` image layers, ``c_layer`` co-attention, ReLU poolers, three heads.

In a co-attention layer the reference names the image side 1 and the text side 2: text queries
(``query2``) attend to image keys/values (``key1``/``value1``) and go out through ``dense2`` and
``LayerNorm2`` into the text feed-forward (``t_intermediate``/``t_output``), and the other way
round. ``biOutput.q_dense1/2`` exist in the state dict but the reference never uses them.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from pathlib import Path

import torch

from ..models.vilbert import ViLBertConfig
from . import hf_encoder
from .files import CheckpointError
from .hf_bert import config_from_hf
from .keymap import count_indexed, drop, rename
from .layout import Layout, any_key, register_layout

_C = r"bert\.encoder\.c_layer\.(\d+)\."
_T, _I = r"transformer.co_blocks.\1.a_from_b.", r"transformer.co_blocks.\1.b_from_a."
RULES = [
    *hf_encoder.embedding_rules(r"bert\.embeddings\."),
    (r"bert\.v_embeddings\.image_embeddings\.(weight|bias)", r"region_stem.proj.\1"),
    (r"bert\.v_embeddings\.image_location_embeddings\.(weight|bias)", r"region_stem.box.\1"),
    (r"bert\.v_embeddings\.LayerNorm\.(weight|bias)", r"region_stem.norm.\1"),
    (r"bert\.embeddings\.task_embeddings\.weight", r"task_embedding.weight"),
    (r"bert\.t_pooler\.dense\.(weight|bias)", r"text_pooler.dense.\1"),
    (r"bert\.v_pooler\.dense\.(weight|bias)", r"image_pooler.dense.\1"),
    (r"cls\.predictions\.transform\.dense\.(weight|bias)", r"mlm.dense.\1"),
    (r"cls\.predictions\.transform\.LayerNorm\.(weight|bias)", r"mlm.norm.\1"),
    (r"cls\.predictions\.bias", r"mlm.bias"),
    (r"cls\.imagePredictions\.transform\.dense\.(weight|bias)", r"region_head.dense.\1"),
    (r"cls\.imagePredictions\.transform\.LayerNorm\.(weight|bias)", r"region_head.norm.\1"),
    (r"cls\.imagePredictions\.decoder\.(weight|bias)", r"region_head.decoder.\1"),
    (r"cls\.bi_seq_relationship\.(weight|bias)", r"align.\1"),
    # co-attention: text side (queries 2, keys/values 1, dense2, LayerNorm2, t_* feed-forward)
    (_C + r"biattention\.query2\.(weight|bias)", _T + r"attn.q.\2"),
    (_C + r"biattention\.key1\.(weight|bias)", _T + r"attn.k.\2"),
    (_C + r"biattention\.value1\.(weight|bias)", _T + r"attn.v.\2"),
    (_C + r"biOutput\.dense2\.(weight|bias)", _T + r"attn.out.\2"),
    (_C + r"biOutput\.LayerNorm2\.(weight|bias)", _T + r"norm1.\2"),
    (_C + r"t_intermediate\.dense\.(weight|bias)", _T + r"mlp.fc1.\2"),
    (_C + r"t_output\.dense\.(weight|bias)", _T + r"mlp.fc2.\2"),
    (_C + r"t_output\.LayerNorm\.(weight|bias)", _T + r"norm2.\2"),
    # … and the image side
    (_C + r"biattention\.query1\.(weight|bias)", _I + r"attn.q.\2"),
    (_C + r"biattention\.key2\.(weight|bias)", _I + r"attn.k.\2"),
    (_C + r"biattention\.value2\.(weight|bias)", _I + r"attn.v.\2"),
    (_C + r"biOutput\.dense1\.(weight|bias)", _I + r"attn.out.\2"),
    (_C + r"biOutput\.LayerNorm1\.(weight|bias)", _I + r"norm1.\2"),
    (_C + r"v_intermediate\.dense\.(weight|bias)", _I + r"mlp.fc1.\2"),
    (_C + r"v_output\.dense\.(weight|bias)", _I + r"mlp.fc2.\2"),
    (_C + r"v_output\.LayerNorm\.(weight|bias)", _I + r"norm2.\2"),
    *hf_encoder.layer_rules(r"bert\.encoder\.layer\.", "transformer.a_blocks."),
    *hf_encoder.layer_rules(r"bert\.encoder\.v_layer\.", "transformer.b_blocks."),
]
UNUSED = r"bert\.encoder\.c_layer\.\d+\.biOutput\.q_dense[12]\.(weight|bias)"


def _match(keys: set[str], folder: Path | None) -> bool:
    return any_key(keys, contains="encoder.c_layer.") or any_key(keys, contains="v_embeddings.")


def convert(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    tied = sd.get("cls.predictions.decoder.weight")
    if tied is not None and not torch.equal(tied, sd.get("bert.embeddings.word_embeddings.weight", tied)):
        raise CheckpointError("cls.predictions.decoder.weight differs from bert.embeddings.word_embeddings.weight; "
                              "polymodal's ViLBERT ties them")
    unused = sorted(k for k in sd if re.fullmatch(UNUSED, k))
    if unused:
        warnings.warn(f"ViLBERT checkpoint: {len(unused)} tensors the reference never uses are not loaded "
                      f"({', '.join(unused[:4])}{', …' if len(unused) > 4 else ''})", stacklevel=3)
    sd = drop(sd, [UNUSED, r"cls\.predictions\.decoder\.weight", r".*position_ids"])
    return rename(hf_encoder.fuse_attention(sd), RULES)


def _infer(sd: dict[str, torch.Tensor], cfg: dict | None, folder: Path | None) -> ViLBertConfig:
    """From the reference's BertConfig arguments (``vilbert_config_args`` in a config.json beside
    the weights, or its own ``bert_base_6layer_6conect.json``) for heads and the co-attention
    schedule; widths, depths and vocabularies from the tensors."""
    args = (cfg or {}).get("vilbert_config_args", cfg or {})
    if "v_biattention_id" not in args or "t_biattention_id" not in args:
        raise CheckpointError(f"{folder}: a ViLBERT checkpoint needs its config (v_biattention_id, t_biattention_id, "
                              "heads) in a config.json beside it; the tensors cannot show the co-attention schedule")
    text = dataclasses.replace(config_from_hf(args, sd, prefix="bert."), pad_token_id=0, tanh_pooler=False)
    image_proj = sd["bert.v_embeddings.image_embeddings.weight"]
    return ViLBertConfig(
        text, visual_dim=image_proj.shape[1], image_width=image_proj.shape[0],
        image_layers=count_indexed(sd, r"bert\.encoder\.v_layer\.(\d+)\.attention\.output\.dense\.weight"),
        image_heads=args["v_num_attention_heads"],
        image_mlp_hidden=sd["bert.encoder.v_layer.0.intermediate.dense.weight"].shape[0],
        co_width=sd["bert.encoder.c_layer.0.biattention.query1.weight"].shape[0],
        co_heads=args["bi_num_attention_heads"], text_co_layers=tuple(args["t_biattention_id"]),
        image_co_layers=tuple(args["v_biattention_id"]),
        region_classes=sd["cls.imagePredictions.decoder.weight"].shape[0],
        task_tokens=sd["bert.embeddings.task_embeddings.weight"].shape[0] if "bert.embeddings.task_embeddings.weight"
        in sd else 0, fusion=args.get("fusion_method", "mul"))


LAYOUT = register_layout(Layout("vilbert", "vilbert", "ViLBERT (vilbert-multi-task)", _match, priority=70,
                                convert=convert, infer_config=_infer))
