"""Validation of a crawl job's images: per-image rules, perceptual hashes, near-duplicates, the job lifecycle."""
