"""The crawl pipeline: planning a job into chunks, running a chunk, the safe downloader and its address checks."""
