"""Runtime settings, read once per container from the environment.

Every function, the CLI and the tests read configuration through `get_settings()`. Each setting is declared
once below, as a field whose upper-cased name is its environment variable, with its type, default, bounds and
meaning; the README's configuration tables are checked against these declarations (tests/test_settings.py).
Reading settings touches nothing but the environment: secrets named by an ARN are fetched by the code that
needs them, on first use. Call `get_settings.cache_clear()` after changing the environment (tests do).
"""

from __future__ import annotations

from functools import cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MAX_RECEIVE_COUNT = 5
"""Deliveries of one message before SQS moves it to its dead-letter queue: template.yaml's `MaxReceiveCount`
default (a parity test keeps them equal), and what the workers assume when the variable is unset."""

MiB = 1024 * 1024


class SettingsError(ValueError):
    """An environment variable holds a value its setting refuses; the message names every such variable."""


class HostLimits(BaseModel):
    """One host's budget in `CRAWL_HOST_OVERRIDES`: a field left out keeps the default, `null` lifts that limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate: float | None = Field(default=None, gt=0, description="requests per second, `null` for no rate limit")
    concurrency: int | None = Field(default=None, ge=1, description="downloads at once, `null` for no cap")

    def pick(self, name: str, default: float | int) -> float | int | None:
        """The field if the override names it (even as `null`), else the deployment's default."""
        return getattr(self, name) if name in self.model_fields_set else default


class Settings(BaseSettings):
    """Every setting; the environment variable is the field name in upper case. Empty variables count as
    unset (CloudFormation passes an empty optional parameter as "")."""

    model_config = SettingsConfigDict(frozen=True, env_ignore_empty=True, extra="ignore")

    database_url: str = Field(
        default="",
        repr=False,
        description="`postgresql+pg8000://user:pass@host/db` (for a unix socket: `?unix_sock=/dir/.s.PGSQL.5432`)",
    )
    db_secret_arn: str = Field(
        default="", description="used when `DATABASE_URL` is unset: an RDS-shaped Secrets Manager secret"
    )
    db_proxy_endpoint: str = Field(default="", description="optional RDS Proxy host that replaces the secret's host")
    db_ca_bundle: str = Field(default="", description="optional CA bundle for TLS to RDS")
    parameters_secrets_extension_http_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="port of the AWS Parameters and Secrets Lambda Extension, which then serves the secrets "
        "(the template sets 2773 when its layer is given); 0 = read secrets through boto3",
    )
    db_pool_size: int = Field(default=1, ge=1, le=100, description="database connections per process")
    db_pool_recycle_seconds: int = Field(
        default=900, ge=1, le=86_400, description="age at which a pooled connection is replaced by a new one"
    )
    data_bucket: str = Field(default="pixcrawler-data", min_length=3, description="S3 bucket for images and exports")
    dispatch_queue_url: str = Field(default="", description="SQS queue of crawl jobs to plan")
    crawl_queue_url: str = Field(default="", description="SQS queue of crawl chunks")
    validation_queue_url: str = Field(default="", description="SQS queue of validation batches")
    export_queue_url: str = Field(default="", description="SQS queue of export jobs")
    public_api_url: str = Field(default="http://127.0.0.1:3000", description="base URL of download links")
    download_link_secret: str = Field(default="", repr=False, description="key that signs download links")
    download_link_secret_arn: str = Field(
        default="", description="Secrets Manager secret holding that key, used when DOWNLOAD_LINK_SECRET is unset"
    )
    oidc_authorize_url: str = Field(
        default="",
        description="the dataset browser's sign-in: the OIDC provider's authorization endpoint (empty: the page "
        "expects a local token in its address)",
    )
    oidc_token_url: str = Field(default="", description="the OIDC provider's token endpoint (code with PKCE)")
    oidc_client_id: str = Field(default="", description="the browser's OIDC client id (a public client, no secret)")
    oidc_scopes: str = Field(default="openid email", description="scopes the browser asks for, space-separated")
    oidc_logout_url: str = Field(default="", description="optional: the provider's logout endpoint, for sign-out")
    validation_batch_size: int = Field(
        default=200, ge=1, le=10_000, description="images to decode per validation message (one with facts: 1/25)"
    )
    validation_max_pixels: int = Field(
        default=50_000_000, ge=1, description="larger images are refused as decompression bombs without decoding"
    )
    openverse_url: str = Field(default="https://api.openverse.org", description="Openverse API base URL")
    openverse_client_id: str = Field(default="", description="Openverse OAuth client (anonymous when unset)")
    openverse_client_secret: str = Field(default="", repr=False, description="Openverse OAuth client secret")
    wikimedia_url: str = Field(
        default="https://commons.wikimedia.org/w/api.php", description="Wikimedia Commons API endpoint"
    )
    crawl_user_agent: str = Field(
        default="PixCrawler/0.1 (+https://github.com/pixcrawler/pixcrawler; crawler@pixcrawler.dev)",
        min_length=1,
        description="User-Agent of every provider call and download",
    )
    crawl_allow_loopback: bool = Field(
        default=False, description="allow downloads from loopback addresses (local stack and tests only)"
    )
    crawl_page_size: int = Field(default=20, ge=1, le=500, description="results per provider search page")
    crawl_urls_per_chunk: int = Field(default=100, ge=1, le=10_000, description="candidate URLs per crawl chunk")
    max_receive_count: int = Field(
        default=DEFAULT_MAX_RECEIVE_COUNT,
        ge=1,
        le=1000,
        description="deliveries before a message moves to its dead-letter queue (SQS allows 1 to 1000)",
    )
    crawl_stuck_after_seconds: int = Field(
        default=1800,
        description="the sweep requeues chunks and jobs idle this long (tests pass -1 to call everything stuck)",
    )
    crawl_commit_reserve_seconds: float = Field(
        default=15, ge=0, description="time kept for the commit after the last download may end"
    )
    crawl_min_chunk_seconds: float = Field(
        default=60,
        ge=0,
        description="download time a chunk must have left to start; with less it goes back to the queue",
    )
    download_max_bytes: int = Field(default=20 * MiB, ge=1, description="largest image downloaded, in bytes")
    download_connect_timeout: float = Field(default=5, gt=0, description="seconds to connect to an image host")
    download_read_timeout: float = Field(default=15, gt=0, description="seconds between bytes of a response")
    download_total_timeout: float = Field(default=60, gt=0, description="seconds for one whole download")
    download_max_redirects: int = Field(default=5, ge=0, le=30, description="redirects followed per download")
    download_concurrency: int = Field(default=16, ge=1, le=256, description="parallel downloads per chunk")
    crawl_host_rate: float = Field(
        default=5, gt=0, description="requests per second to one host (registrable domain), across every worker"
    )
    crawl_host_concurrency: int = Field(
        default=4, ge=1, le=256, description="downloads in flight at one host at once, across every worker"
    )
    crawl_host_overrides: dict[str, HostLimits] = Field(
        default_factory=dict,
        description='JSON map of per-host budgets, e.g. `{"example.org": {"rate": 50, "concurrency": 16}}`',
    )
    crawl_host_max_wait: float = Field(
        default=5, ge=0, description="seconds a chunk waits for a busy host before deferring its candidates"
    )
    crawl_host_circuit_failures: int = Field(
        default=5, ge=1, description="429/503 answers in a row after which a host's circuit opens"
    )
    crawl_host_circuit_seconds: float = Field(
        default=60, gt=0, description="first cool-down of an open circuit; doubles at each reopening, up to an hour"
    )
    crawl_max_deferrals: int = Field(
        default=50, ge=1, description="times a chunk may be deferred before its waiting candidates are refused"
    )
    export_part_size_mb: int = Field(
        default=8, ge=5, le=5120, description="smallest multipart part size in MiB (S3 allows 5 to 5120)"
    )
    export_reserve_seconds: int = Field(
        default=60, ge=0, description="time kept back at the end of an invocation to checkpoint or write manifests"
    )
    export_fetch_concurrency: int = Field(default=16, ge=1, le=256, description="parallel image downloads from S3")

    @field_validator("openverse_url")
    @classmethod
    def _without_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @classmethod
    def from_env(cls) -> Settings:
        """Read the environment now; a refused value raises `SettingsError` naming its variable and why."""
        try:
            return cls()
        except ValidationError as error:
            problems = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in error.errors())
            raise SettingsError(f"invalid configuration: {problems}") from None


def _where(loc: tuple[int | str, ...]) -> str:
    """The variable, then the place inside its JSON value: `CRAWL_HOST_OVERRIDES["127.0.0.1"]["rate"]`
    (pydantic-settings' own spelling joins it all with `_`, and a host's dots make that unreadable)."""
    variable, *inside = loc
    return str(variable).upper() + "".join(f"[{step}]" if isinstance(step, int) else f'["{step}"]' for step in inside)


@cache
def get_settings() -> Settings:
    return Settings.from_env()
