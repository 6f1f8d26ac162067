"""The gated-aggregation reference against hand-computed values; runs in any process."""

import math

import pytest
import torch

from kernels import gated_aggregation
from kernels.gated_aggregation import gated_aggregation_reference

# 5 nodes; edges into node 1 (three), node 2 (two), node 3 (one); nodes 0 and 4 have none
RECEIVERS = torch.tensor([1, 1, 1, 2, 2, 3])
N_NODES = 5


def test_hand_values():
    ln2, ln3 = math.log(2.0), math.log(3.0)
    # [E, H=2]: head 0 into node 1: exp = 1, 2, 3 -> alpha 1/6, 1/3, 1/2; into node 2: 1/2, 1/2
    #           head 1 into node 1: exp = 1, 1, 2 -> 1/4, 1/4, 1/2;   into node 2: 3/4, 1/4
    #           node 3 has one in-edge: alpha = 1 whatever its logit
    logits = torch.tensor(
        [[0.0, 0.0], [ln2, 0.0], [ln3, ln2], [0.0, ln3], [0.0, 0.0], [5.0, -7.0]]
    )
    messages = torch.tensor([[6.0, 0], [0, 6], [6, 6], [2, 4], [4, -4], [1, 2]])  # [E, D=2]
    expected = torch.tensor(
        [
            [[0.0, 0.0], [0.0, 0.0]],
            # head 0: 1/6 [6, 0] + 1/3 [0, 6] + 1/2 [6, 6]; head 1: 1/4 [6, 0] + 1/4 [0, 6] + ...
            [[4.0, 5.0], [4.5, 4.5]],
            # head 0: 1/2 [2, 4] + 1/2 [4, -4]; head 1: 3/4 [2, 4] + 1/4 [4, -4]
            [[3.0, 0.0], [2.5, 2.0]],
            [[1.0, 2.0], [1.0, 2.0]],
            [[0.0, 0.0], [0.0, 0.0]],
        ]
    )  # [N, H, D]
    torch.testing.assert_close(gated_aggregation(messages, logits, RECEIVERS, N_NODES), expected)


def test_softmax_sums_to_one_over_each_nodes_in_edges():
    generator = torch.Generator().manual_seed(0)
    receivers = torch.randint(0, 9, (40,), generator=generator)
    receivers[receivers == 4] = 5  # node 4 gets no in-edges
    logits = 5 * torch.randn(2, 40, 3, generator=generator)  # [B, E, H]
    ones = torch.ones(2, 40, 1)  # message 1 on every edge: the output is sum_i alpha_ij
    sums = gated_aggregation(ones, logits, receivers, 9)[..., 0]  # [B, N, H]
    has_in_edges = torch.bincount(receivers, minlength=9) > 0
    assert not has_in_edges[4]
    torch.testing.assert_close(sums[:, has_in_edges], torch.ones(2, int(has_in_edges.sum()), 3))
    # a node without in-edges receives zero: a sum over no edges
    assert torch.equal(sums[:, ~has_in_edges], torch.zeros(2, int((~has_in_edges).sum()), 3))


def test_large_logits_do_not_overflow():
    # exp(1000) overflows float32; the per-destination max is subtracted first
    logits = torch.tensor([[1000.0], [1001.0]])
    messages = torch.tensor([[1.0], [0.0]])
    out = gated_aggregation(messages, logits, torch.tensor([0, 0]), 1)
    torch.testing.assert_close(out, torch.tensor([[[1 / (1 + math.e)]]]))


def test_batch_equals_separate_samples_and_edge_order_does_not_matter():
    generator = torch.Generator().manual_seed(1)
    receivers = torch.randint(0, 6, (17,), generator=generator)
    messages = torch.randn(3, 17, 5, generator=generator)
    logits = torch.randn(3, 17, 2, generator=generator)
    batched = gated_aggregation(messages, logits, receivers, 6)
    for b in range(3):
        torch.testing.assert_close(batched[b], gated_aggregation(messages[b], logits[b],
                                                                 receivers, 6))
    order = torch.randperm(17, generator=generator)
    shuffled = gated_aggregation(messages[:, order], logits[:, order], receivers[order], 6)
    torch.testing.assert_close(shuffled, batched)


def test_gradcheck():
    generator = torch.Generator().manual_seed(2)
    messages = torch.randn(2, 6, 3, dtype=torch.float64, generator=generator).requires_grad_()
    logits = torch.randn(2, 6, 2, dtype=torch.float64, generator=generator).requires_grad_()

    def aggregate(x, a):
        return gated_aggregation_reference(x, a, RECEIVERS, N_NODES)

    assert torch.autograd.gradcheck(aggregate, (messages, logits))


def test_bf16_logits_keep_the_messages_dtype():
    messages = torch.randn(6, 4)
    logits = torch.randn(6, 2)
    out = gated_aggregation(messages, logits.bfloat16(), RECEIVERS, N_NODES)
    assert out.dtype == torch.float32
    torch.testing.assert_close(
        out, gated_aggregation(messages, logits.bfloat16().float(), RECEIVERS, N_NODES)
    )


def test_shape_mismatch_is_named():
    with pytest.raises(ValueError, match="receivers"):
        gated_aggregation(torch.ones(6, 4), torch.ones(5, 2), RECEIVERS, N_NODES)
