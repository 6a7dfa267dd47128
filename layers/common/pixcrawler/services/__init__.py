"""Domain services: the business rules, shared by the API, the workers and the CLI."""
