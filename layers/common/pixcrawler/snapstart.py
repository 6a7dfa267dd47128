"""Lambda SnapStart: work done once before the snapshot, and state that is reset after every restore.

With SnapStart, Lambda runs a function's init once per published version, snapshots the initialised
environment's memory and resumes every new environment from that one snapshot, possibly days later. What init
left in memory is then shared by every restored environment: pooled database connections (their sockets are
dead), boto3 sessions and their resolved credentials, pooled HTTP connections, the `random` module's state,
cached secrets and tokens. Each module that keeps such state registers its own reset with `after_restore`, so
a function resets exactly what it imported; work worth doing once for every environment (imports, the API's
route and OpenAPI compilation) registers with `before_snapshot`.

The Python managed runtimes (3.12+) ship `snapshot_restore_py` and run before-snapshot hooks in reverse order
of registration, after-restore hooks in order. Where it is absent (the local stack, other runtimes) nothing is
ever snapshotted, so registering does nothing.
"""

from __future__ import annotations

import gc
import importlib
import random
from collections.abc import Callable
from types import ModuleType
from typing import TypeVar

Hook = TypeVar("Hook", bound=Callable[[], object])


def _runtime_hooks() -> ModuleType | None:
    try:
        return importlib.import_module("snapshot_restore_py")
    except ImportError:
        return None


_runtime = _runtime_hooks()


def before_snapshot(hook: Hook) -> Hook:
    """Run `hook` once, before Lambda snapshots the initialised environment (usable as a decorator)."""
    if _runtime is not None:
        _runtime.register_before_snapshot(hook)
    return hook


def after_restore(hook: Hook) -> Hook:
    """Run `hook` in every environment restored from the snapshot, before its first request (within the
    runtime's 10 s limit: resets only, no network calls)."""
    if _runtime is not None:
        _runtime.register_after_restore(hook)
    return hook


after_restore(random.seed)
"""`random` was seeded once at import, so every environment restored from one snapshot would draw the same
sequence (retry jitter included); `random.seed()` reseeds from the kernel's entropy."""


@before_snapshot
def _freeze() -> None:
    """Registered first, so it runs last: what init and the other hooks built lives as long as the snapshot,
    so full collections after restore need not rescan it (they would otherwise add tens of ms to the first
    requests)."""
    gc.collect()
    gc.freeze()
