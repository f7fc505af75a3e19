"""Cross-attention and co-attention against a plain-torch computation from the same weights."""

import math

import pytest
import torch
import torch.nn.functional as F

from polymodal.layers import Attention, CoAttentionBlock, PostNormBlock, TwoStreamTransformer


def _reference_attention(attn: Attention, x, context, padding=None):
    """softmax(Q Kᵀ / √d + mask) V, heads split by hand; x [B, N, D], context [B, M, Dc]."""
    b, n, _ = x.shape
    h, d = attn.num_heads, attn.head_dim
    q = (x @ attn.q.weight.T + attn.q.bias).view(b, n, h, d).transpose(1, 2)
    k = (context @ attn.k.weight.T + attn.k.bias).view(b, -1, h, d).transpose(1, 2)
    v = (context @ attn.v.weight.T + attn.v.bias).view(b, -1, h, d).transpose(1, 2)
    scores = q @ k.transpose(-1, -2) / math.sqrt(d)
    if padding is not None:
        scores = scores + padding[:, None, None, :].float() * -1e9
    probs = scores.softmax(-1)
    out = (probs @ v).transpose(1, 2).reshape(b, n, h * d)
    return out @ attn.out.weight.T + attn.out.bias, probs


def _randomise(module):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.5 if p.dim() > 1 else 0.1) + (1.0 if p.dim() == 1 else 0))


@pytest.mark.parametrize("need_weights", [False, True])
def test_cross_attention_with_other_widths_matches_plain_torch(need_weights):
    attn = Attention(12, 2, fused_qkv=False, kv_dim=20, inner_dim=8)
    _randomise(attn)
    x, context = torch.randn(3, 5, 12), torch.randn(3, 7, 20)
    padding = torch.zeros(3, 7, dtype=torch.bool)
    padding[1, 4:] = True
    out, weights = attn(x, context, key_padding_mask=padding, need_weights=need_weights)
    expected, probs = _reference_attention(attn, x, context, padding)
    assert out.shape == (3, 5, 12)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    if need_weights:
        torch.testing.assert_close(weights, probs, rtol=1e-5, atol=1e-6)
        assert weights[1, :, :, 4:].abs().max() == 0  # padded context tokens get no attention


def test_co_attention_block_each_stream_attends_to_the_others_input():
    co = CoAttentionBlock(dim_a=12, dim_b=20, num_heads=2, inner_dim=8, mlp_hidden_a=24, mlp_hidden_b=40).eval()
    _randomise(co)
    a, b = torch.randn(2, 5, 12), torch.randn(2, 6, 20)
    pad_b = torch.tensor([[False] * 6, [False] * 3 + [True] * 3])
    new_a, new_b, (w_ab, w_ba) = co(a, b, None, pad_b, need_weights=True)

    def post_ln(block, x, context, padding):
        y, _ = _reference_attention(block.attn, x, context, padding)
        x = F.layer_norm(x + y, x.shape[-1:], block.norm1.weight, block.norm1.bias, 1e-12)
        return F.layer_norm(x + block.mlp(x), x.shape[-1:], block.norm2.weight, block.norm2.bias, 1e-12)

    torch.testing.assert_close(new_a, post_ln(co.a_from_b, a, b, pad_b), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(new_b, post_ln(co.b_from_a, b, a, None), rtol=1e-5, atol=1e-5)
    assert w_ab.shape == (2, 2, 5, 6) and w_ba.shape == (2, 2, 6, 5)
    assert w_ab[1, :, :, 3:].abs().max() == 0


def test_two_stream_schedule_follows_vilbert():
    """a_before=[0, 1], b_before=[0, 1]: co0 → (a0, b0) → co1 → b1, a1 — checked by running the
    parts by hand in that order."""
    torch.manual_seed(0)
    a_blocks = [PostNormBlock(12, 2, 24) for _ in range(2)]
    b_blocks = [PostNormBlock(20, 2, 40) for _ in range(2)]
    co = [CoAttentionBlock(12, 20, 2, 8, 24, 40) for _ in range(2)]
    stack = TwoStreamTransformer(a_blocks, b_blocks, co, a_before=[0, 1], b_before=[0, 1]).eval()
    _randomise(stack)
    a, b = torch.randn(2, 5, 12), torch.randn(2, 6, 20)
    out_a, out_b, none = stack(a, b)
    assert none is None
    x, y, _ = co[0](a, b)
    x, y = a_blocks[0](x)[0], b_blocks[0](y)[0]
    x, y, _ = co[1](x, y)
    x, y = a_blocks[1](x)[0], b_blocks[1](y)[0]
    torch.testing.assert_close(out_a, x, rtol=0, atol=0)
    torch.testing.assert_close(out_b, y, rtol=0, atol=0)
    wa, wb, w = stack(a, b, need_weights=True)  # explicit softmax: the same up to rounding
    torch.testing.assert_close(wa, out_a, rtol=1e-5, atol=1e-5)
    assert len(w["a"]) == len(w["b"]) == len(w["co"]) == 2
    # Another schedule gives other outputs: the order is not a no-op.
    other = TwoStreamTransformer(a_blocks, b_blocks, co, a_before=[1, 2], b_before=[0, 1]).eval()
    assert (other(a, b)[0] - out_a).abs().max() > 1e-3


def test_bad_schedules_are_named():
    co = [CoAttentionBlock(12, 20, 2, 8, 24, 40)]
    with pytest.raises(ValueError, match=r"a_before \[3\] must be non-decreasing block indices in \[0, 2\]"):
        TwoStreamTransformer([PostNormBlock(12, 2, 24)] * 2, [], co, a_before=[3], b_before=[0])
    with pytest.raises(ValueError, match="1 co-attention blocks need as many schedule entries"):
        TwoStreamTransformer([], [], co, a_before=[0, 0], b_before=[0])
