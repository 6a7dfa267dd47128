"""A file written with `write_atomically` is never seen half written by another reader."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from pixcrawler_local.files import write_atomically


def test_a_reader_polling_the_file_sees_only_whole_versions(tmp_path: Path) -> None:
    path = tmp_path / "stack.json"
    versions = [json.dumps({"pid": n, "padding": "x" * 200_000}) for n in range(100)]
    write_atomically(path, versions[0])
    seen: list[int] = []
    torn: list[str] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            text = path.read_text()
            try:
                seen.append(json.loads(text)["pid"])
            except ValueError:
                torn.append(text[:40])

    reader = threading.Thread(target=poll)
    reader.start()
    for version in versions[1:]:
        write_atomically(path, version)
    done.set()
    reader.join()
    assert torn == [] and len(seen) > 10
    assert json.loads(path.read_text())["pid"] == 99
    assert [entry.name for entry in tmp_path.iterdir()] == ["stack.json"]  # no temporary file left behind
