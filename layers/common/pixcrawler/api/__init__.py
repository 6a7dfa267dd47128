"""The REST API behind API Gateway (HTTP API): routers per resource over the services in `pixcrawler.services`.

`pixcrawler.api.app.app` is the resolver; `functions/api/app.py` only hands it the event.
"""
