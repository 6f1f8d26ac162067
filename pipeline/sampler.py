"""A distributed sampler that can stop and resume mid-epoch.

torch's ``DistributedSampler`` has an epoch but no cursor, so a run resumed mid-epoch would
either repeat or skip samples. This one is fully described by ``(seed, epoch, cursor)``.

Rank ``r`` of ``R`` takes ``perm[r::R]`` of the epoch's permutation. With a per-rank batch of
``b/R``, the union of the ranks' k-th batches is ``perm[k*b:(k+1)*b]``: exactly the k-th batch a
single worker with batch ``b`` sees, which is what makes DDP with R workers match one worker.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class ResumableDistributedSampler(Sampler[int]):
    def __init__(
        self,
        dataset_len: int,
        num_replicas: int = 1,
        rank: int = 0,
        *,
        seed: int = 0,
        shuffle: bool = True,
    ):
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} not in [0, {num_replicas})")
        if dataset_len < num_replicas:
            raise ValueError(f"{dataset_len} samples cannot feed {num_replicas} replicas")
        self.dataset_len, self.num_replicas, self.rank = dataset_len, num_replicas, rank
        self.seed, self.shuffle = seed, shuffle
        self.epoch = 0
        self.cursor = 0  # samples of this rank's share already consumed in this epoch
        # Drop the tail so every rank has the same number of samples (no padding duplicates).
        self.num_samples = dataset_len // num_replicas

    def indices(self) -> list[int]:
        """This rank's indices for the current epoch, in order: [num_samples]."""
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            perm = torch.randperm(self.dataset_len, generator=g).tolist()
        else:
            perm = list(range(self.dataset_len))
        perm = perm[: self.num_samples * self.num_replicas]
        return perm[self.rank :: self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices()[self.cursor :])

    def __len__(self) -> int:
        return self.num_samples - self.cursor

    def set_epoch(self, epoch: int, cursor: int = 0) -> None:
        self.epoch, self.cursor = epoch, cursor

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "epoch": self.epoch, "cursor": self.cursor}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state["seed"] != self.seed:
            raise ValueError(f"sampler seed {state['seed']} in checkpoint != {self.seed}")
        self.set_epoch(state["epoch"], state["cursor"])
