"""A zip archive's central directory, kept out of memory and out of the export's checkpoint.

A zip ends with one record per entry (name, CRC, sizes, offset). `zipfile` holds every entry in memory until
`close`, and a suspended export used to carry them all in its JSONB checkpoint: at a million images that is
about 100 MB of memory and of checkpoint, rewritten at every suspension. Here each entry's record is encoded
as soon as the entry is written and spooled to a temporary file (memory, then /tmp); an invocation that
suspends stores its records as one object beside the upload (`<key>.directory-<n>`, under the export's
prefix, so completing or dropping the export removes it with the rest), and the checkpoint keeps only how many
such objects and records there are. The invocation that finishes copies the stored records, then its own,
into the archive and writes the end records: the bytes `zipfile`'s own `close` would have written
(tests/export/test_outputs.py compares them, ZIP64 records included).
"""

from __future__ import annotations

import shutil
import struct
import tempfile
import zipfile
from typing import Any

from pixcrawler.exports.multipart import MiB, MultipartWriter

SPOOL_IN_MEMORY = MiB
_UTF8_NAME = 0x800
# the record layouts of APPNOTE.TXT sections 4.3.12, 4.3.14-16, as zipfile spells them (not in its typeshed stubs)
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_END = struct.Struct("<4s4H2LH")
_END64 = struct.Struct("<4sQ2H2L4Q")
_END64_LOCATOR = struct.Struct("<4sLQL")
_LEGACY_FIELDS = (
    "filename",
    "date_time",
    "compress_type",
    "flag_bits",
    "external_attr",
    "create_version",
    "extract_version",
    "CRC",
    "compress_size",
    "file_size",
    "header_offset",
)


def record(info: zipfile.ZipInfo) -> bytes:
    """The entry's central-directory record, as `zipfile.ZipFile._write_end_record` encodes it for an entry
    without extra fields or comment (the only kind an export writes)."""
    year, month, day, hour, minute, second = info.date_time
    zip64: list[int] = []
    file_size, compress_size, offset = info.file_size, info.compress_size, info.header_offset
    if file_size > zipfile.ZIP64_LIMIT or compress_size > zipfile.ZIP64_LIMIT:
        zip64 += [file_size, compress_size]
        file_size = compress_size = 0xFFFFFFFF
    if offset > zipfile.ZIP64_LIMIT:
        zip64.append(offset)
        offset = 0xFFFFFFFF
    extra = struct.pack(f"<HH{len(zip64)}Q", 1, 8 * len(zip64), *zip64) if zip64 else b""
    minimum = zipfile.ZIP64_VERSION if zip64 else 0
    try:
        name, flags = info.filename.encode("ascii"), info.flag_bits
    except UnicodeEncodeError:
        name, flags = info.filename.encode("utf-8"), info.flag_bits | _UTF8_NAME
    header = _CENTRAL.pack(
        b"PK\x01\x02",
        max(minimum, info.create_version),
        info.create_system,
        max(minimum, info.extract_version),
        info.reserved,
        flags,
        info.compress_type,
        hour << 11 | minute << 5 | second // 2,
        (year - 1980) << 9 | month << 5 | day,
        info.CRC,
        compress_size,
        file_size,
        len(name),
        len(extra),
        0,
        0,
        info.internal_attr,
        info.external_attr,
        offset,
    )
    return header + name + extra


def end_records(count: int, offset: int, size: int) -> bytes:
    """What follows the central directory (`count` records, `size` bytes from `offset`): ZIP64 end records when
    a limit of the classic one is passed, then the classic one, with no archive comment."""
    out = b""
    if count > zipfile.ZIP_FILECOUNT_LIMIT or offset > zipfile.ZIP64_LIMIT or size > zipfile.ZIP64_LIMIT:
        out += _END64.pack(b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, offset)
        out += _END64_LOCATOR.pack(b"PK\x06\x07", 0, offset + size, 1)
        count, size, offset = min(count, 0xFFFF), min(size, 0xFFFFFFFF), min(offset, 0xFFFFFFFF)
    return out + _END.pack(b"PK\x05\x06", 0, 0, count, count, size, offset, 0)


class CentralDirectory:
    """The records of the entries written so far: earlier invocations' in stored objects, this one's spooled."""

    def __init__(self, out: MultipartWriter, state: dict[str, Any] | None) -> None:
        state = state or {}
        self._out = out
        self._stored: int = state.get("directory_objects", 0)
        self._count: int = state.get("directory_entries", 0)
        self._spool = tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY)  # noqa: SIM115 closed by suspend/write_end/close
        for values in state.get("entries", []):  # a checkpoint written before the directory was spooled
            self.add(_legacy_info(values))

    def add(self, info: zipfile.ZipInfo) -> None:
        self._spool.write(record(info))
        self._count += 1

    def suspend(self) -> dict[str, Any]:
        """Store this invocation's records beside the upload; the state names how many objects hold records.

        A redelivered message resumes from the previous checkpoint and overwrites the same object number, so
        records of an invocation whose checkpoint was lost are never read."""
        self._spool.seek(0)
        self._out.put_beside(_object_suffix(self._stored), self._spool)
        self.close()
        return {"directory_objects": self._stored + 1, "directory_entries": self._count}

    def write_end(self) -> None:
        """Write the whole directory and the end records after the last entry."""
        start = self._out.tell()
        for number in range(self._stored):
            for chunk in self._out.read_beside(_object_suffix(number)):
                self._out.write(chunk)
        self._spool.seek(0)
        shutil.copyfileobj(self._spool, self._out, MiB)
        self.close()
        self._out.write(end_records(self._count, start, self._out.tell() - start))

    def close(self) -> None:
        self._spool.close()


def _object_suffix(number: int) -> str:
    return f".directory-{number}"


def _legacy_info(values: list[Any]) -> zipfile.ZipInfo:
    """An entry as checkpoints listed them before: the ZipInfo fields of `_LEGACY_FIELDS`, in that order."""
    info = zipfile.ZipInfo(values[0], tuple(values[1]))  # type: ignore[arg-type]
    for name, value in zip(_LEGACY_FIELDS[2:], values[2:], strict=True):
        setattr(info, name, value)
    return info
