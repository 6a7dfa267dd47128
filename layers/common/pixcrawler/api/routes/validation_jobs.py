from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from pixcrawler.api import pagination
from pixcrawler.api.context import session, user_id
from pixcrawler.api.routes.params import Id
from pixcrawler.models import ValidationJob
from pixcrawler.schemas import Page, ValidationJobCreate, ValidationJobResponse
from pixcrawler.services import validation_jobs

router = APIGatewayHttpRouter()


@router.post("/crawl-jobs/<crawl_job_id>/validation-jobs", tags=["validation jobs"], status_code=202)
def start_validation_job(crawl_job_id: Id, data: ValidationJobCreate) -> ValidationJobResponse:
    """Store the rules and queue the job; 409 when the crawl job has no images."""
    return ValidationJobResponse.model_validate(validation_jobs.create(session(), user_id(), crawl_job_id, data))


@router.get("/crawl-jobs/<crawl_job_id>/validation-jobs", tags=["validation jobs"])
def list_validation_jobs(
    crawl_job_id: Id, limit: pagination.Limit = pagination.DEFAULT_LIMIT, cursor: pagination.Cursor = None
) -> Page[ValidationJobResponse]:
    query = validation_jobs.of_crawl_job(session(), user_id(), crawl_job_id)
    return pagination.page(query, ValidationJob.id, ValidationJobResponse, limit, cursor)


@router.get("/validation-jobs/<validation_job_id>", tags=["validation jobs"])
def get_validation_job(validation_job_id: Id) -> ValidationJobResponse:
    return ValidationJobResponse.model_validate(validation_jobs.get(session(), user_id(), validation_job_id))
