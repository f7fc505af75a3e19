import pytest
import torch
from torch import nn

from polymodal.layers import Attention


def _copy_from_mha(ours: Attention, mha: nn.MultiheadAttention) -> None:
    with torch.no_grad():
        ours.qkv.weight.copy_(mha.in_proj_weight)
        ours.qkv.bias.copy_(mha.in_proj_bias)
        ours.out.weight.copy_(mha.out_proj.weight)
        ours.out.bias.copy_(mha.out_proj.bias)
        if mha.bias_k is not None:
            ours.bias_k.copy_(mha.bias_k.view(1, 1, -1))
            ours.bias_v.copy_(mha.bias_v.view(1, 1, -1))


@pytest.mark.parametrize("bias_kv", [False, True])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("padding", [False, True])
def test_matches_torch_multihead_attention(bias_kv, causal, padding):
    torch.manual_seed(0)
    d, h, b, n = 32, 4, 3, 7
    mha = nn.MultiheadAttention(d, h, batch_first=True, add_bias_kv=bias_kv).eval()
    if bias_kv:
        nn.init.normal_(mha.bias_k), nn.init.normal_(mha.bias_v)
    ours = Attention(d, h, add_bias_kv=bias_kv).eval()
    _copy_from_mha(ours, mha)
    x = torch.randn(b, n, d)
    pad = torch.zeros(b, n, dtype=torch.bool)
    pad[1, 5:] = True
    kw_ref, kw = {}, {}
    if causal:
        kw_ref["attn_mask"] = torch.ones(n, n, dtype=torch.bool).triu(1)  # True = blocked (torch convention)
        kw["is_causal"] = True
    if padding:
        kw_ref["key_padding_mask"] = pad
        kw["key_padding_mask"] = pad
    ref, ref_w = mha(x, x, x, need_weights=True, average_attn_weights=False, **kw_ref)
    out, w = ours(x, **kw)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    assert w is None
    out2, w2 = ours(x, need_weights=True, **kw)
    torch.testing.assert_close(out2, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(w2, ref_w, rtol=1e-5, atol=1e-5)


def test_split_qkv_equals_fused_and_supports_cross_attention():
    torch.manual_seed(0)
    fused = Attention(16, 2).eval()
    split = Attention(16, 2, fused_qkv=False).eval()
    with torch.no_grad():
        q, k, v = fused.qkv.weight.chunk(3)
        qb, kb, vb = fused.qkv.bias.chunk(3)
        for lin, w, bias in ((split.q, q, qb), (split.k, k, kb), (split.v, v, vb)):
            lin.weight.copy_(w), lin.bias.copy_(bias)
        split.out.load_state_dict(fused.out.state_dict())
    x = torch.randn(2, 5, 16)
    torch.testing.assert_close(split(x)[0], fused(x)[0])
    cross = Attention(16, 2, fused_qkv=False, kv_dim=24)
    out, w = cross(x, torch.randn(2, 9, 24), need_weights=True)
    assert out.shape == (2, 5, 16) and w.shape == (2, 2, 5, 9)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 2, 5))


def test_causal_mask_blocks_the_future():
    torch.manual_seed(0)
    attn = Attention(8, 2).eval()
    x = torch.randn(1, 6, 8)
    y = x.clone()
    y[:, 4:] = torch.randn(1, 2, 8)  # change only the last two positions
    a, _ = attn(x, is_causal=True)
    b, _ = attn(y, is_causal=True)
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_bad_width_and_fused_cross_attention_raise():
    with pytest.raises(ValueError, match="divisible"):
        Attention(10, 3)
    with pytest.raises(ValueError, match="fused_qkv"):
        Attention(8, 2)(torch.randn(1, 2, 8), torch.randn(1, 3, 8))


def test_bf16_autocast_training_keeps_dtype_and_values():
    """Under CPU bf16 autocast with autograd the attention core runs in fp32 (a speed choice);
    the output stays bf16 and close to the fp32 result, and gradients flow."""
    torch.manual_seed(0)
    attn = Attention(32, 4)
    x = torch.randn(2, 9, 32, requires_grad=True)
    ref, _ = attn(x, is_causal=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = attn(x, is_causal=True)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, rtol=0, atol=0.05)
    out.float().sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(attn.qkv.weight.grad).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dense_bias_inference_path_matches_sdpa_across_head_chunks(monkeypatch, dtype):
    """A full [B, H, N, M] additive bias without autograd takes the chunked baddbmm path; with a
    chunk smaller than B·H (and not dividing it) it gives SDPA's answer, padded keys included."""
    import polymodal.layers.attention as attention

    torch.manual_seed(0)
    b, h, n, d = 3, 4, 11, 40
    attn = Attention(d, h).eval()
    x = torch.randn(b, n, d)
    bias = torch.randn(b, h, n, n)
    bias[1, :, :, 8:] = float("-inf")  # row 1 pads its last 3 keys
    q, k, v = (t.view(b, n, h, d // h).transpose(1, 2) for t in attn.qkv(x).chunk(3, -1))
    want = attn.out(torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
                    .transpose(1, 2).reshape(b, n, d))
    monkeypatch.setattr(attention, "_CHUNK_BYTES", 5 * n * n * torch.finfo(dtype).bits // 8)  # 5 of 12 (b, h) pairs per step
    calls = []
    real = attention._dense_bias_attention
    monkeypatch.setattr(attention, "_dense_bias_attention", lambda *a: calls.append(1) or real(*a))
    with torch.no_grad():
        got, _ = attn.to(dtype)(x.to(dtype), attn_mask=bias.to(dtype))
    assert calls, "the dense-bias inference path was not taken"
    torch.testing.assert_close(got.float(), want.detach(), rtol=0, atol=1e-5 if dtype == torch.float32 else 0.05)
