"""One rule table per layout: the export rules are the import rules inverted, and inverting them
gives every key back."""

import re

import pytest
import torch

import polymodal
from polymodal.weights import hf_clip, openai_clip
from polymodal.weights.keymap import invert_rules, rename


@pytest.mark.parametrize("layout", [hf_clip, openai_clip], ids=["hf", "openai"])
def test_inverted_rules_take_every_clip_key_there_and_back(layout):
    ours = {k: torch.zeros(1) for k in polymodal.create("clip-tiny").state_dict() if ".attn.qkv." not in k
            or layout is openai_clip}
    out_rules, block_rules = invert_rules(layout.RULES), invert_rules(layout.BLOCK_RULES)
    theirs = rename(rename(ours, out_rules), block_rules)
    back = rename(rename(theirs, layout.RULES), layout.BLOCK_RULES)
    assert set(back) == set(ours) and set(theirs) != set(ours)


def test_a_rule_that_cannot_be_undone_is_refused():
    with pytest.raises(ValueError, match="cannot be inverted"):
        invert_rules([(r"(a)\.(b)", r"\1.\1")])  # group 2 lost
    assert invert_rules([(r"x\.(\d+)\.(.*)", r"y.\2.\1")]) == [(r"y\.(.*)\.(\d+)", r"x.\2.\1")]
    assert re.sub(*invert_rules([(r"x\.(\d+)\.(.*)", r"y.\2.\1")])[0], "y.w.3") == "x.3.w"
