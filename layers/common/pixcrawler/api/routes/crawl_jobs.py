from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from pixcrawler.api import pagination
from pixcrawler.api.context import session, user_id
from pixcrawler.api.routes.params import Id
from pixcrawler.models import CrawlJob
from pixcrawler.schemas import CrawlJobCreate, CrawlJobResponse, Page
from pixcrawler.services import crawl_jobs

router = APIGatewayHttpRouter()


@router.post("/projects/<project_id>/crawl-jobs", tags=["crawl jobs"], status_code=202)
def start_crawl_job(project_id: Id, data: CrawlJobCreate) -> CrawlJobResponse:
    """Store the job and queue it for dispatch; 503 (and nothing stored) when the queue refuses."""
    return CrawlJobResponse.model_validate(crawl_jobs.create(session(), user_id(), project_id, data))


@router.get("/projects/<project_id>/crawl-jobs", tags=["crawl jobs"])
def list_crawl_jobs(
    project_id: Id, limit: pagination.Limit = pagination.DEFAULT_LIMIT, cursor: pagination.Cursor = None
) -> Page[CrawlJobResponse]:
    query = crawl_jobs.of_project(session(), user_id(), project_id)
    return pagination.page(query, CrawlJob.id, CrawlJobResponse, limit, cursor)


@router.get("/crawl-jobs/<crawl_job_id>", tags=["crawl jobs"])
def get_crawl_job(crawl_job_id: Id) -> CrawlJobResponse:
    return CrawlJobResponse.model_validate(crawl_jobs.get(session(), user_id(), crawl_job_id))


@router.post("/crawl-jobs/<crawl_job_id>/cancel", tags=["crawl jobs"])
def cancel_crawl_job(crawl_job_id: Id) -> CrawlJobResponse:
    return CrawlJobResponse.model_validate(crawl_jobs.cancel(session(), user_id(), crawl_job_id))


@router.post("/crawl-jobs/<crawl_job_id>/retry", tags=["crawl jobs"], status_code=202)
def retry_crawl_job(crawl_job_id: Id) -> CrawlJobResponse:
    """Re-dispatch only the failed chunks; 409 when none failed."""
    return CrawlJobResponse.model_validate(crawl_jobs.retry(session(), user_id(), crawl_job_id))
