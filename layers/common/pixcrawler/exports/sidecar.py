"""`croissant.json` beside a csv/json/jsonl export.

A document export is one file that cannot hold another, so its Croissant description is a second object in
the same folder of the bucket (`.../<export id>-<random>/croissant.json`). It is written once the document is
assembled, because it lists the document's size and sha256, which only the finished object has (a hash
cannot be carried across the invocations that stream the document), and it describes the document's rows as
the record set, each image given by its link.
"""

from __future__ import annotations

import hashlib
import posixpath

from pixcrawler import aws
from pixcrawler.exports import croissant, layout, manifest, selection
from pixcrawler.exports.checkpoint import Checkpoint, Job, StoredFile, Written
from pixcrawler.exports.multipart import MiB
from pixcrawler.schemas.export import ExportFormat
from pixcrawler.settings import get_settings

ENCODING_FORMATS = {
    ExportFormat.CSV: "text/csv",
    ExportFormat.JSON: croissant.JSON,
    ExportFormat.JSONL: "application/jsonlines",
}
"""The documents' media types as Croissant readers name them."""


def croissant_key(storage_key: str) -> str:
    return posixpath.join(posixpath.dirname(storage_key), layout.CROISSANT_FILE)


def write_croissant(job: Job, checkpoint: Checkpoint) -> StoredFile:
    """Describe the assembled document at `checkpoint.key` and return the description as the export lists it;
    repeatable, so a redelivered completion simply writes it again."""
    settings = get_settings()
    s3 = aws.s3()
    digest, size = hashlib.sha256(), 0
    for chunk in s3.get_object(Bucket=settings.data_bucket, Key=checkpoint.key)["Body"].iter_chunks(MiB):
        digest.update(chunk)
        size += len(chunk)
    credits = croissant.Credits()
    for image in selection.images(job, checkpoint, 0):
        credits.add(manifest.row(image, selection.path(job, checkpoint, image), Written.original(image)))
    name = posixpath.basename(checkpoint.key)
    document = croissant.encode(
        croissant.document(
            title=job.name,
            published=job.created_at,
            credits=credits,
            files=[croissant.DistributionFile(name, size, digest.hexdigest(), ENCODING_FORMATS[job.format])],
            records=name,
            image_files=False,
        )
    )
    key = croissant_key(checkpoint.key)
    s3.put_object(
        Bucket=settings.data_bucket, Key=key, Body=document, ContentType=layout.media_type(layout.CROISSANT_FILE)
    )
    return StoredFile(
        name=layout.CROISSANT_FILE, key=key, size=len(document), sha256=hashlib.sha256(document).hexdigest()
    )
