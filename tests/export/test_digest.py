"""The resumable SHA-256: OpenSSL's state carried through JSON equals `hashlib.sha256`, however the bytes are cut,
and a multipart upload suspended mid-object knows its object's digest when it finishes."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import pytest

from pixcrawler import transfers
from pixcrawler.exports import multipart
from pixcrawler.exports.digest import ResumableSha256
from pixcrawler.exports.multipart import MiB, MultipartWriter, UploadState

pytestmark = pytest.mark.usefixtures("aws_over_http")  # parts are stored through the CRT, over HTTP


@pytest.mark.parametrize("seed", range(5))
def test_a_hash_carried_through_json_at_any_cut_equals_hashlib(seed: int) -> None:
    rng = random.Random(seed)
    data = rng.randbytes(rng.randrange(0, 300_000))
    cuts = sorted(rng.randrange(0, len(data) + 1) for _ in range(rng.randrange(0, 6)))
    hashed = ResumableSha256()
    for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
        hashed = ResumableSha256(json.loads(json.dumps(hashed.state())))
        hashed.update(data[start:end])
        assert hashed.hexdigest() == hashlib.sha256(data[:end]).hexdigest()  # a digest leaves the state usable
    assert hashed.hexdigest() == hashlib.sha256(data).hexdigest()


def test_known_answers_and_a_refused_state() -> None:
    assert ResumableSha256().hexdigest() == hashlib.sha256(b"").hexdigest()
    abc = ResumableSha256()
    abc.update(b"abc")
    assert abc.hexdigest() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    with pytest.raises(ValueError, match="112 bytes"):
        ResumableSha256("AAAA")


def test_an_upload_suspended_mid_object_knows_its_sha256(aws: dict[str, Any]) -> None:
    s3, bucket, key = aws["s3"], aws["bucket"], "exports/1/x/object.bin"
    data = random.Random(7).randbytes(13 * MiB + 12_345)
    state = multipart.start(s3, bucket, key, 5 * MiB, "application/octet-stream")
    for number, (start, end) in enumerate([(0, 3 * MiB), (3 * MiB, 9 * MiB + 1), (9 * MiB + 1, len(data))]):
        writer = MultipartWriter(s3, bucket, key, state)
        writer.write(data[start:end])
        if end < len(data):
            state = UploadState.model_validate_json(writer.suspend(f"{key}.tail-{number}").model_dump_json())
        else:
            state = writer.finish()
        writer.close()
    multipart.assemble(s3, bucket, key, state)

    stored = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert stored == data and len(state.parts) == 3
    assert state.sha256 == hashlib.sha256(stored).hexdigest()


def test_an_upload_resumed_from_a_checkpoint_without_a_hash_state_reports_no_digest(aws: dict[str, Any]) -> None:
    """A checkpoint written before parts were hashed: an unknown digest, never a wrong one."""
    s3, bucket, key = aws["s3"], aws["bucket"], "exports/1/y/object.bin"
    state = multipart.start(s3, bucket, key, 5 * MiB, "application/octet-stream")
    writer = MultipartWriter(s3, bucket, key, state)
    writer.write(bytes(6 * MiB))
    old = writer.suspend(f"{key}.tail").model_copy(update={"hash_state": None})
    writer.close()
    assert len(old.parts) == 1

    resumed = MultipartWriter(s3, bucket, key, old)
    resumed.write(b"end")
    assert resumed.finish().sha256 is None


def test_a_part_that_fails_while_the_next_one_fills_fails_the_upload_at_its_finish(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parts upload on the writer's own thread while the stream goes on; an upload's error is not lost with
    its thread: the next part's hand-over or `finish` raises it, and the state lists only the parts stored."""
    s3, bucket, key = aws["s3"], aws["bucket"], "exports/1/z/object.bin"
    state = multipart.start(s3, bucket, key, 5 * MiB, "application/octet-stream")
    refused: list[int] = []
    stored = transfers.upload_part

    def refuse_the_second(bucket: str, key: str, upload_id: str, number: int, body: bytes) -> str:
        if number == 2:
            refused.append(2)
            raise transfers.UploadFailed(f"{key}, part 2: refused")
        return stored(bucket, key, upload_id, number, body)

    monkeypatch.setattr(transfers, "upload_part", refuse_the_second)
    writer = MultipartWriter(s3, bucket, key, state)
    writer.write(random.Random(3).randbytes(12 * MiB))
    with pytest.raises(transfers.UploadFailed, match="part 2: refused"):
        writer.finish()
    writer.close()
    assert refused == [2] and [part["PartNumber"] for part in writer.state.parts] == [1]
