"""The local stack: what lets the product run on one machine (embedded services, sample data, the CLI)."""
