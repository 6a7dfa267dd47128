from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from pixcrawler.api import pagination
from pixcrawler.api.context import session, user_id
from pixcrawler.api.routes.params import INT4_MAX, Id
from pixcrawler.models import ExportJob
from pixcrawler.schemas import ExportJobCreate, ExportJobResponse, Page
from pixcrawler.services import export_jobs

router = APIGatewayHttpRouter()


@router.post("/crawl-jobs/<crawl_job_id>/export-jobs", tags=["exports"], status_code=202)
def start_export_job(crawl_job_id: Id, data: ExportJobCreate) -> ExportJobResponse:
    """Store the export and queue it; 409 while the crawl job is still pending or running."""
    return ExportJobResponse.model_validate(export_jobs.create(session(), user_id(), crawl_job_id, data))


@router.get("/export-jobs", tags=["exports"])
def list_export_jobs(
    crawl_job_id: Annotated[int | None, Query(ge=1, le=INT4_MAX)] = None,
    limit: pagination.Limit = pagination.DEFAULT_LIMIT,
    cursor: pagination.Cursor = None,
) -> Page[ExportJobResponse]:
    """The caller's exports; `crawl_job_id` keeps one crawl job's (a job page lists its exports with it)."""
    query = export_jobs.owned(user_id())
    if crawl_job_id is not None:
        query = query.where(ExportJob.crawl_job_id == crawl_job_id)
    return pagination.page(query, ExportJob.id, ExportJobResponse, limit, cursor)


@router.get("/export-jobs/<export_job_id>", tags=["exports"])
def get_export_job(export_job_id: Id) -> ExportJobResponse:
    """`download_url` is null and `link_expired` true once the link's `expires_at` has passed."""
    return ExportJobResponse.model_validate(export_jobs.get(session(), user_id(), export_job_id))


@router.post("/export-jobs/<export_job_id>/download-url", tags=["exports"])
def issue_download_url(export_job_id: Id) -> ExportJobResponse:
    """A fresh link for a completed export, valid for the export's `link_lifetime_hours`."""
    return ExportJobResponse.model_validate(export_jobs.issue_link(session(), user_id(), export_job_id))
