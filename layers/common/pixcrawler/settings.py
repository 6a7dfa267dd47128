"""Runtime settings, read once per container from the environment.

Every function, the CLI and the tests read configuration through `get_settings()`, so one place decides
names and defaults. Call `get_settings.cache_clear()` after changing the environment (tests do).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

DEFAULT_MAX_RECEIVE_COUNT = 5
"""Deliveries of one message before SQS moves it to its dead-letter queue: template.yaml's `MaxReceiveCount`
default (a parity test keeps them equal), and what the workers assume when the variable is unset."""


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
    validation_batch_size: int
    validation_max_pixels: int
    openverse_url: str
    openverse_client_id: str
    openverse_client_secret: str
    wikimedia_url: str
    crawl_user_agent: str
    crawl_allow_loopback: bool
    crawl_page_size: int
    crawl_urls_per_chunk: int
    max_receive_count: int
    crawl_stuck_after_seconds: int
    crawl_commit_reserve_seconds: float
    download_max_bytes: int
    download_connect_timeout: float
    download_read_timeout: float
    download_total_timeout: float
    download_max_redirects: int
    download_concurrency: int
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
            validation_batch_size=int(_env("VALIDATION_BATCH_SIZE", "200")),
            validation_max_pixels=int(_env("VALIDATION_MAX_PIXELS", "50000000")),
            openverse_url=_env("OPENVERSE_URL", "https://api.openverse.org").rstrip("/"),
            openverse_client_id=_env("OPENVERSE_CLIENT_ID"),
            openverse_client_secret=_env("OPENVERSE_CLIENT_SECRET"),
            wikimedia_url=_env("WIKIMEDIA_URL", "https://commons.wikimedia.org/w/api.php"),
            crawl_user_agent=_env(
                "CRAWL_USER_AGENT", "PixCrawler/0.1 (+https://github.com/pixcrawler/pixcrawler; crawler@pixcrawler.dev)"
            ),
            crawl_allow_loopback=_env("CRAWL_ALLOW_LOOPBACK").lower() in ("1", "true", "yes"),
            crawl_page_size=int(_env("CRAWL_PAGE_SIZE", "20")),
            crawl_urls_per_chunk=int(_env("CRAWL_URLS_PER_CHUNK", "100")),
            max_receive_count=int(_env("MAX_RECEIVE_COUNT", str(DEFAULT_MAX_RECEIVE_COUNT))),
            crawl_stuck_after_seconds=int(_env("CRAWL_STUCK_AFTER_SECONDS", "1800")),
            crawl_commit_reserve_seconds=float(_env("CRAWL_COMMIT_RESERVE_SECONDS", "15")),
            download_max_bytes=int(_env("DOWNLOAD_MAX_BYTES", str(20 * 1024 * 1024))),
            download_connect_timeout=float(_env("DOWNLOAD_CONNECT_TIMEOUT", "5")),
            download_read_timeout=float(_env("DOWNLOAD_READ_TIMEOUT", "15")),
            download_total_timeout=float(_env("DOWNLOAD_TOTAL_TIMEOUT", "60")),
            download_max_redirects=int(_env("DOWNLOAD_MAX_REDIRECTS", "5")),
            download_concurrency=int(_env("DOWNLOAD_CONCURRENCY", "16")),
            export_part_size_mb=int(_env("EXPORT_PART_SIZE_MB", "8")),
            export_reserve_seconds=int(_env("EXPORT_RESERVE_SECONDS", "60")),
            export_fetch_concurrency=int(_env("EXPORT_FETCH_CONCURRENCY", "16")),
        )


@cache
def get_settings() -> Settings:
    return Settings.from_env()
