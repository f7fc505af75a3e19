"""oneDNN prepacked inference linears: the same outputs as nn.Linear (fp32 1e-4, bf16 cosine ≥ 0.999),
the state dict unchanged, the plain path kept for training and autocast."""

import pytest
import torch
import torch.nn.functional as F

import polymodal
from polymodal.layers.packed_linear import PackedLinear, available, pack_linears

pytestmark = pytest.mark.skipif(not available(), reason="this torch build has no oneDNN packed linear")


def test_a_packed_linear_matches_nn_linear_on_any_leading_shape():
    torch.manual_seed(0)
    plain = torch.nn.Linear(48, 40)
    packed = PackedLinear(plain)
    for shape in [(5, 48), (2, 7, 48), (2, 3, 4, 48)]:
        x = torch.randn(shape)
        with torch.no_grad():
            assert torch.allclose(packed(x), plain(x), atol=1e-5)
    assert "packed" not in packed.state_dict() and set(packed.state_dict()) == {"weight", "bias"}
    import copy

    twin = copy.deepcopy(packed)  # its own parameters and its own packed copy
    assert twin.weight is not packed.weight and torch.equal(twin.weight, packed.weight)
    with torch.no_grad():
        twin.weight.add_(1.0)
        twin.repack()
        assert torch.allclose(twin(x), F.linear(x, twin.weight, twin.bias), atol=1e-5)
        assert torch.allclose(packed(x), plain(x), atol=1e-5)


def test_a_packed_model_gives_the_same_embeddings_in_fp32_and_close_ones_in_bf16():
    torch.manual_seed(0)
    model = polymodal.create("clip-world-tiny").eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        want = model.embed("image", x)
        keys = set(model.state_dict())
        assert pack_linears(model) > 4 and set(model.state_dict()) == keys
        assert torch.allclose(model.embed("image", x), want, atol=1e-4)
        half = model.to(torch.bfloat16)  # packs again from the bf16 weights
        got = half.embed("image", x.bfloat16()).float()
    assert F.cosine_similarity(got, want).min() > 0.999


def test_training_and_autocast_take_the_plain_path():
    torch.manual_seed(0)
    plain = torch.nn.Linear(8, 4)
    packed = PackedLinear(plain)
    x = torch.randn(3, 8, requires_grad=True)
    packed(x).sum().backward()  # gradients flow: F.linear under grad mode
    assert plain.weight.grad is not None and x.grad is not None
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert packed(x).dtype == torch.bfloat16


@pytest.mark.parametrize("act", ["gelu", "gelu_tanh", "quick_gelu", "relu"])
def test_an_mlps_activation_runs_inside_its_first_gemm_with_the_same_outputs(act):
    import copy

    from polymodal.layers.mlp import Mlp

    torch.manual_seed(0)
    plain = Mlp(48, 192, act).eval()
    fused = copy.deepcopy(plain)
    assert pack_linears(fused) == 2
    assert isinstance(fused.act, torch.nn.Identity) and fused.fc1.post_op is not None
    assert fused.state_dict().keys() == plain.state_dict().keys()
    x = torch.randn(5, 7, 48)
    with torch.inference_mode():
        torch.testing.assert_close(fused(x), plain(x), atol=1e-5, rtol=1e-5)
        bf16 = copy.deepcopy(fused).bfloat16()(x.bfloat16()).float()
        assert F.cosine_similarity(bf16.flatten(0, 1), plain(x).flatten(0, 1)).min() > 0.999
    torch.testing.assert_close(fused(x), plain(x), atol=1e-5, rtol=1e-5)  # with autograd: the PyTorch ops


def test_fusion_can_be_left_off():
    from polymodal.layers.mlp import Mlp, QuickGELU

    mlp = Mlp(16, 64, "quick_gelu").eval()
    pack_linears(mlp, fuse=False)
    assert isinstance(mlp.act, QuickGELU) and mlp.fc1.post_op is None and mlp.fc2.in_scale == 1.0
