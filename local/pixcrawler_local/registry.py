"""Running `pixcrawler serve` stacks, listed per user so `pixcrawler token` finds the data dir of the one running.

A token is only accepted by the stack whose data dir holds the secret that signed it; guessing a data dir
(the current directory's `.pixcrawler`) minted tokens the server rejected. Each `serve` writes an entry here
while it runs and removes it when it stops. A stack killed with `kill -9` cannot remove its entry, so an
entry counts only while its process lives and its API port accepts connections; stale ones are deleted.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pixcrawler_local.files import write_atomically


@dataclass(frozen=True)
class RunningStack:
    pid: int
    data_dir: Path
    api_url: str

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except (ProcessLookupError, PermissionError):  # gone, or the pid now belongs to another user's process
            return False
        address = urlsplit(self.api_url)
        try:
            with socket.create_connection((address.hostname or "127.0.0.1", address.port or 80), timeout=2):
                return True
        except OSError:
            return False


def directory() -> Path:
    """The per-user runtime dir (`XDG_RUNTIME_DIR`, cleared at logout), else a folder under the home dir."""
    base = os.environ.get("XDG_RUNTIME_DIR") or Path.home() / ".cache"
    return Path(base) / "pixcrawler" / "stacks"


def announce(stack: RunningStack) -> Path:
    """List `stack`; the caller deletes the returned entry when the stack stops."""
    folder = directory()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    entry = folder / f"{stack.pid}.json"
    write_atomically(entry, json.dumps(asdict(stack), default=str))
    return entry


def running() -> list[RunningStack]:
    """The listed stacks that are running now, in data dir order; entries of stopped stacks are removed."""
    found = []
    for entry in sorted(directory().glob("*.json")):
        try:
            fields = json.loads(entry.read_text())
            stack = RunningStack(int(fields["pid"]), Path(fields["data_dir"]), str(fields["api_url"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written, or not ours: never a reason to fail
        if stack.alive():
            found.append(stack)
        else:
            entry.unlink(missing_ok=True)
    return sorted(found, key=lambda stack: str(stack.data_dir))
