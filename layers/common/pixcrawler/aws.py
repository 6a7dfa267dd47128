"""boto3 clients, created on first use and reused by warm invocations.

Creating clients at import would cost every cold start ~0.3 s, including functions that never call AWS.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient


def region() -> str:
    """Lambda sets AWS_REGION; local runs may set only AWS_DEFAULT_REGION. Endpoints (`AWS_ENDPOINT_URL`,
    used by the local stack to reach moto's server) are read by boto3 itself."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


@cache
def s3() -> S3Client:
    import boto3
    from botocore.config import Config

    config = Config(signature_version="s3v4", max_pool_connections=32)
    return boto3.client("s3", config=config, region_name=region())


@cache
def sqs() -> SQSClient:
    import boto3

    return boto3.client("sqs", region_name=region())


def reset() -> None:
    """Forget cached clients (tests switch between moto contexts)."""
    s3.cache_clear()
    sqs.cache_clear()
