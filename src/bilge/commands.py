"""The guard's and the registry commands' view of a Session, while they move to it.

`Context` is a `Session` (bilge.session) built with the keywords they use.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bilge.collect.prefetch import Prefetch
from bilge.config.policy import Policy
from bilge.engine.base import Engine
from bilge.model import Snapshot
from bilge.session import Session, Status
from bilge.state.store import StateStore


class Context(Session):
    def __init__(
        self,
        host: str,
        policy: Policy,
        state_dir: Path | None = None,
        engine_factory: Callable[[str], Engine] | None = None,
        prefetch: Prefetch | None = None,
        _engine: Engine | None = None,
        _store: StateStore | None = None,
    ) -> None:
        super().__init__(
            host,
            policy,
            _store,
            state_dir=state_dir,
            engine=_engine,
            engine_factory=engine_factory,
            prefetch=prefetch,
        )


def snapshot(ctx: Session) -> Snapshot:
    return ctx.snapshot()


def status(ctx: Session) -> Status:
    return ctx.status()
