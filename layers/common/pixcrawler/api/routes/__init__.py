"""One router per resource; `pixcrawler.api.app` mounts them all under `/v1`."""
