"""Runtime settings, read once per container from the environment.

Every function, the CLI and the tests read configuration through `get_settings()`, so one place decides
names and defaults. Call `get_settings.cache_clear()` after changing the environment (tests do).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    db_secret_arn: str
    db_proxy_endpoint: str
    db_ca_bundle: str
    db_pool_size: int
    data_bucket: str
    dispatch_queue_url: str
    crawl_queue_url: str
    validation_queue_url: str
    export_queue_url: str
    public_api_url: str
    download_link_secret: str
    download_link_secret_arn: str
    export_part_size_mb: int
    export_reserve_seconds: int
    export_fetch_concurrency: int

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=_env("DATABASE_URL"),
            db_secret_arn=_env("DB_SECRET_ARN"),
            db_proxy_endpoint=_env("DB_PROXY_ENDPOINT"),
            db_ca_bundle=_env("DB_CA_BUNDLE"),
            db_pool_size=int(_env("DB_POOL_SIZE", "1")),
            data_bucket=_env("DATA_BUCKET", "pixcrawler-data"),
            dispatch_queue_url=_env("DISPATCH_QUEUE_URL"),
            crawl_queue_url=_env("CRAWL_QUEUE_URL"),
            validation_queue_url=_env("VALIDATION_QUEUE_URL"),
            export_queue_url=_env("EXPORT_QUEUE_URL"),
            public_api_url=_env("PUBLIC_API_URL", "http://127.0.0.1:3000"),
            download_link_secret=_env("DOWNLOAD_LINK_SECRET"),
            download_link_secret_arn=_env("DOWNLOAD_LINK_SECRET_ARN"),
            export_part_size_mb=int(_env("EXPORT_PART_SIZE_MB", "8")),
            export_reserve_seconds=int(_env("EXPORT_RESERVE_SECONDS", "60")),
            export_fetch_concurrency=int(_env("EXPORT_FETCH_CONCURRENCY", "16")),
        )


@cache
def get_settings() -> Settings:
    return Settings.from_env()
