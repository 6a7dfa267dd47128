"""PixCrawler shared layer: models, schemas and domain services imported by every function."""
