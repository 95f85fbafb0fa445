"""Sharding an evaluation over processes: rank and world from the launcher, ids per rank, one start-up sync.

``torchrun`` and ``accelerate launch`` both set ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK`` (and ``MASTER_ADDR``/``MASTER_PORT``). A plain ``python`` run is
rank 0 of 1. Rank ``r`` of ``W`` takes the ids at positions ``r, r + W, r + 2W, ...``
of the run's id list: every id goes to exactly one rank whatever ``W`` (ranks
beyond the number of ids get none).

Processes meet once, at start-up, to agree that the output folder is usable
(:class:`Coordinator`, through ``torch.distributed``; the process group is
created with the gloo backend when the launcher has not created one). After
that they share nothing but files: rank 0 waits for the other ranks' records
to appear (see :mod:`llava_st.eval.store`).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Mapping, Sequence, TypeVar
from ..errors import ConfigError, EvalError

T = TypeVar("T")


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0


def dist_env(environ: Mapping[str, str] | None = None) -> DistEnv:
    """Rank, world size and local rank from the launcher's environment variables.

    Raises:
        ValueError: a variable that is not a whole number, or a rank outside ``0..world_size-1``.
    """
    env = os.environ if environ is None else environ

    def read(name: str, default: int) -> int:
        raw = env.get(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"environment variable {name}={raw!r} is not a whole number") from None

    world = read("WORLD_SIZE", 1)
    rank = read("RANK", 0)
    local = read("LOCAL_RANK", rank)
    if world < 1:
        raise ConfigError(f"WORLD_SIZE must be >= 1, got {world}")
    if not 0 <= rank < world:
        raise ConfigError(f"RANK {rank} is outside 0..{world - 1} (WORLD_SIZE={world})")
    return DistEnv(rank, world, local)


def shard(ids: Sequence[T], rank: int, world_size: int) -> list[T]:
    """The ids rank ``rank`` of ``world_size`` handles: every ``world_size``-th, starting at ``rank``.

    Example::

        >>> shard([0, 1, 2, 3, 4], 1, 2)
        [1, 3]
    """
    if not 0 <= rank < world_size:
        raise ConfigError(f"rank {rank} is outside 0..{world_size - 1}")
    return list(ids[rank::world_size])


class ShardError(EvalError, RuntimeError):
    """The processes of a sharded run cannot meet, or one of them refuses the run."""


class Coordinator:
    """The start-up meeting of the ranks of one run.

    :meth:`agree` gathers every rank's problem (or ``None``) and raises the
    same error on all ranks when any has one, so that no rank starts writing
    while another refuses the run.
    """

    def __init__(self, env: DistEnv, timeout_s: float = 1800.0):
        self.env = env
        self._own_group = False
        self._dist = None
        if env.world_size == 1:
            return
        import torch.distributed as dist

        if not dist.is_available():
            raise ShardError("a sharded evaluation needs torch.distributed, which this torch build lacks")
        if not dist.is_initialized():
            missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(v)]
            if missing:
                raise ShardError(
                    f"WORLD_SIZE={env.world_size} but {', '.join(missing)} is not set: start sharded runs with "
                    "torchrun or accelerate launch"
                )
            dist.init_process_group(
                "gloo",
                rank=env.rank,
                world_size=env.world_size,
                timeout=datetime.timedelta(seconds=timeout_s),
            )
            self._own_group = True
        elif dist.get_world_size() != env.world_size or dist.get_rank() != env.rank:
            raise ShardError(
                f"the initialised process group (rank {dist.get_rank()} of {dist.get_world_size()}) disagrees with "
                f"RANK={env.rank}, WORLD_SIZE={env.world_size}"
            )
        self._dist = dist

    def agree(self, problem: str | None) -> None:
        """Share each rank's problem; raise :class:`ShardError` on every rank if any rank has one."""
        if self._dist is None:
            problems = [problem]
        else:
            problems = [None] * self.env.world_size
            self._dist.all_gather_object(problems, problem)
        found = [f"rank {r}: {p}" for r, p in enumerate(problems) if p]
        if found:
            raise ShardError("; ".join(found))

    def close(self) -> None:
        if self._own_group and self._dist is not None and self._dist.is_initialized():
            self._dist.destroy_process_group()
        self._own_group = False


__all__ = ["Coordinator", "DistEnv", "dist_env", "shard"]
