import pytest

from pipeline.sampler import ResumableDistributedSampler


@pytest.mark.parametrize("n", [10, 11, 64])
def test_ranks_are_disjoint_and_cover_the_epoch(n):
    world = 2
    shares = [ResumableDistributedSampler(n, world, r, seed=3).indices() for r in range(world)]
    assert set(shares[0]).isdisjoint(shares[1])
    union = sorted(shares[0] + shares[1])
    assert len(union) == (n // world) * world  # the odd tail sample is dropped, never duplicated
    assert set(union) <= set(range(n))


def test_two_ranks_half_batches_equal_one_rank_full_batches():
    n, b = 40, 8
    one = ResumableDistributedSampler(n, 1, 0, seed=1).indices()
    r0 = ResumableDistributedSampler(n, 2, 0, seed=1).indices()
    r1 = ResumableDistributedSampler(n, 2, 1, seed=1).indices()
    for k in range(n // b):
        half = b // 2
        assert sorted(r0[k * half:(k + 1) * half] + r1[k * half:(k + 1) * half]) == sorted(
            one[k * b:(k + 1) * b]
        )


def test_epochs_reshuffle_and_cursor_resumes_mid_epoch():
    s = ResumableDistributedSampler(20, 2, 1, seed=0)
    e0 = list(s)
    s.set_epoch(1)
    e1 = list(s)
    assert e0 != e1 and sorted(e0) != [] and len(e0) == len(e1) == 10
    s.cursor = 4
    state = s.state_dict()
    t = ResumableDistributedSampler(20, 2, 1, seed=0)
    t.load_state_dict(state)
    assert list(t) == e1[4:] and len(t) == 6


def test_no_shuffle_is_strided_order_and_seed_mismatch_is_refused():
    s = ResumableDistributedSampler(6, 2, 1, shuffle=False)
    assert list(s) == [1, 3, 5]
    with pytest.raises(ValueError, match="seed"):
        ResumableDistributedSampler(6, 2, 1, seed=5).load_state_dict(s.state_dict())
    with pytest.raises(ValueError):
        ResumableDistributedSampler(6, 2, 2)
