"""`croissant.json` beside a csv/json/jsonl export.

A document export is one file that cannot hold another, so its Croissant description is a second object in
the same folder of the bucket (`.../<export id>-<random>/croissant.json`). It is written once the document is
assembled, because it lists the document's size and sha256, which only the finished upload has (its sha256
counted while the parts went up, however many invocations wrote them), and it describes the document's rows
as the record set, each image given by its link.
"""

from __future__ import annotations

import hashlib

from pixcrawler import aws
from pixcrawler.exports import croissant, items, layout, manifest, objects
from pixcrawler.exports.checkpoint import Checkpoint, Job, StoredFile
from pixcrawler.exports.multipart import MiB
from pixcrawler.settings import get_settings


def write_croissant(job: Job, checkpoint: Checkpoint, document: StoredFile) -> StoredFile:
    """Describe the assembled `document` and return the description as the export lists it; repeatable, so a
    redelivered completion simply writes it again."""
    credits = croissant.Credits()
    for image, path, written in items.entries(job, checkpoint):
        credits.add(manifest.row(image, path, written))
    described = croissant.DistributionFile(
        document.name, document.size, document.sha256 or _read_sha256(document.key), layout.media_type(document.name)
    )
    description = croissant.document(
        title=job.name,
        published=job.created_at,
        credits=credits,
        files=[described],
        records=document.name,
        image_files=False,
    )
    media_type = layout.media_type(layout.CROISSANT_FILE)
    return objects.put(checkpoint, layout.CROISSANT_FILE, croissant.encode(description), media_type)


def _read_sha256(key: str) -> str:
    """The digest of an object whose upload was not hashed (its export began before uploads were): read back."""
    digest = hashlib.sha256()
    for chunk in aws.s3().get_object(Bucket=get_settings().data_bucket, Key=key)["Body"].iter_chunks(MiB):
        digest.update(chunk)
    return digest.hexdigest()
