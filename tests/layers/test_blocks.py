import torch

from polymodal.layers import DropPath, PreNormBlock, QuickGELU, Transformer


def test_grad_checkpointing_gives_identical_gradients():
    torch.manual_seed(0)
    model = Transformer([PreNormBlock(16, 2, 32) for _ in range(3)]).train()
    x = torch.randn(2, 5, 16, requires_grad=True)
    model(x, is_causal=True)[0].square().sum().backward()
    ref = [p.grad.clone() for p in model.parameters()] + [x.grad.clone()]
    model.zero_grad(), x.grad.zero_()
    model.set_grad_checkpointing(True)
    model(x, is_causal=True)[0].square().sum().backward()
    got = [p.grad for p in model.parameters()] + [x.grad]
    for a, b in zip(ref, got):
        torch.testing.assert_close(a, b)


def test_attention_weights_returned_per_layer_only_when_asked():
    model = Transformer([PreNormBlock(16, 2, 32) for _ in range(2)]).eval()
    x = torch.randn(2, 5, 16)
    out, att = model(x)
    assert att is None
    out2, att2 = model(x, need_weights=True)
    torch.testing.assert_close(out, out2, rtol=1e-5, atol=1e-6)
    assert len(att2) == 2 and att2[0].shape == (2, 2, 5, 5)


def test_drop_path_identity_in_eval_and_unbiased_in_train():
    dp = DropPath(0.3)
    x = torch.ones(20000, 4)
    assert torch.equal(dp.eval()(x), x)
    y = dp.train()(x)
    rows = y[:, 0]
    assert torch.isclose(rows[rows != 0], torch.tensor(1 / 0.7)).all()
    assert abs(rows.mean().item() - 1.0) < 0.03
    assert abs((rows == 0).float().mean().item() - 0.3) < 0.02


def test_quick_gelu_formula():
    x = torch.linspace(-4, 4, 9)
    torch.testing.assert_close(QuickGELU()(x), x * torch.sigmoid(1.702 * x))


def test_inference_micro_batching_gives_the_same_outputs_and_masks():
    torch.manual_seed(0)
    model = Transformer([PreNormBlock(16, 2, 32) for _ in range(2)], inference_chunk_tokens=14).eval()
    x = torch.randn(7, 7, 16)  # 2 rows per slice; batch == length, so a shared [N, N] mask looks per-sample
    pad = torch.zeros(7, 7, dtype=torch.bool)
    pad[3, 3:] = True
    pad[6, 1:] = True
    shared = torch.ones(7, 7, dtype=torch.bool).tril()
    per_sample = torch.rand(7, 1, 7, 7) > 0.3
    per_sample[..., 0] = True
    with torch.no_grad():
        for kw in ({}, {"key_padding_mask": pad}, {"attn_mask": shared, "key_padding_mask": pad},
                   {"attn_mask": per_sample}, {"is_causal": True, "key_padding_mask": pad}):
            chunked, _ = model(x, **kw)
            model.inference_chunk_tokens = None
            whole, _ = model(x, **kw)
            model.inference_chunk_tokens = 14
            torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-6)
