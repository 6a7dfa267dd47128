"""The demo's dataset request: the pipeline empties the URL list it is handed, never the sample set's."""

from __future__ import annotations

from pathlib import Path

from pixcrawler_local import demo


def test_the_demo_hands_the_pipeline_its_own_list_of_urls(tmp_path: Path) -> None:
    sample_set = demo.SampleSet(["http://127.0.0.1:8000/images/001.jpg"], distinct=1)
    handed = demo.request(sample_set, tmp_path / "demo.zip")
    assert handed.urls == sample_set.urls
    assert handed.urls is not None
    handed.urls.clear()  # as Pipeline.run does once the crawl job holds them
    assert sample_set.urls == ["http://127.0.0.1:8000/images/001.jpg"]
