"""SnapStart's two phases, run the way the managed Python runtime runs them: the registered before-snapshot
hooks in reverse order of registration, then (in each restored environment) the after-restore hooks in order."""

from __future__ import annotations

from snapshot_restore_py import get_after_restore, get_before_snapshot


def take_snapshot() -> None:
    for hook, args, kwargs in reversed(get_before_snapshot()):
        hook(*args, **kwargs)


def restore() -> None:
    for hook, args, kwargs in get_after_restore():
        hook(*args, **kwargs)
