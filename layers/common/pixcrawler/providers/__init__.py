"""Image providers: where a chunk's candidate images come from."""

from __future__ import annotations

from pixcrawler.providers.base import Candidate, Provider, ProviderError, RateLimited, Work
from pixcrawler.providers.openverse import Openverse
from pixcrawler.providers.urls import UrlList
from pixcrawler.providers.wikimedia import Wikimedia

PROVIDERS: dict[str, type[Provider]] = {"openverse": Openverse, "wikimedia": Wikimedia, "urls": UrlList}


def get_provider(name: str) -> Provider:
    try:
        return PROVIDERS[name]()
    except KeyError:
        raise ProviderError(f"unknown provider {name!r}") from None


__all__ = ["PROVIDERS", "Candidate", "Provider", "ProviderError", "RateLimited", "Work", "get_provider"]
