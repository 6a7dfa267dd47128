"""The URL-list provider: the job itself carries the image URLs (the img2dataset use case)."""

from __future__ import annotations

from pixcrawler.providers.base import Candidate, Provider, Work


class UrlList(Provider):
    name = "urls"

    def candidates(self, work: Work) -> list[Candidate]:
        return [Candidate(url=url) for url in work.urls]
