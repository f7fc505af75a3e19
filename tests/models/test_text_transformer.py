"""The causal text tower's masks: pooled outputs with right padding need none (the causal kernel
alone), other padding and per-position outputs are masked explicitly."""

import torch

import polymodal


def test_padding_at_either_end_leaves_real_tokens_unchanged():
    torch.manual_seed(0)
    text = polymodal.create("clip-tiny").text.eval()
    ids = torch.randint(1, 90, (1, 7))
    with torch.no_grad():
        alone = text.forward_features(ids)
        right = torch.cat([ids, torch.zeros(1, 3, dtype=torch.long)], dim=1)
        right_mask = torch.tensor([[1] * 7 + [0] * 3])
        fast = text.forward_features(right, right_mask, padded_outputs=False)
        exact = text.forward_features(right, right_mask)
        torch.testing.assert_close(fast[:, :7], alone, rtol=0, atol=1e-5)
        torch.testing.assert_close(exact[:, :7], alone, rtol=0, atol=1e-5)
        assert (fast[:, 7:] - exact[:, 7:]).abs().max() > 1e-3  # only padded positions differ
        torch.testing.assert_close(text(right, right_mask), text(ids), rtol=0, atol=1e-5)  # pooled at EOT
        left = torch.cat([torch.zeros(1, 3, dtype=torch.long), ids], dim=1)
        left_mask = torch.tensor([[0] * 3 + [1] * 7])
        # Positions shift by 3, so compare against the positions the real tokens now occupy.
        shifted = text.forward_features(left, left_mask)[:, 3:]
        unmasked = text.forward_features(left)[:, 3:]
        reference = text.forward_features(left, torch.ones_like(left_mask))[:, 3:]
        torch.testing.assert_close(unmasked, reference, rtol=0, atol=1e-5)
        assert (shifted - unmasked).abs().max() > 1e-3  # the left mask was applied: padding hidden
        # With need_weights the explicit mask is used even for right padding: padded keys get 0.
        _, weights = text.forward_features(right, right_mask, need_weights=True)
        assert weights[-1][:, :, :7, 7:].abs().max() == 0
