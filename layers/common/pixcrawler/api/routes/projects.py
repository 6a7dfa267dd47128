from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from pixcrawler.api import pagination
from pixcrawler.api.context import session, user_id
from pixcrawler.api.routes.params import Id, no_content
from pixcrawler.models import Project, ProjectStatus
from pixcrawler.schemas import Page, ProjectCreate, ProjectDetailResponse, ProjectResponse, ProjectUpdate
from pixcrawler.services import projects

router = APIGatewayHttpRouter()


@router.post("/projects", tags=["projects"], status_code=201)
def create_project(data: ProjectCreate) -> ProjectResponse:
    return ProjectResponse.model_validate(projects.create(session(), user_id(), data))


@router.get("/projects", tags=["projects"])
def list_projects(
    status: Annotated[ProjectStatus | None, Query()] = None,
    limit: pagination.Limit = pagination.DEFAULT_LIMIT,
    cursor: pagination.Cursor = None,
) -> Page[ProjectResponse]:
    return pagination.page(projects.owned(user_id(), status), Project.id, ProjectResponse, limit, cursor)


@router.get("/projects/<project_id>", tags=["projects"])
def get_project(project_id: Id) -> ProjectDetailResponse:
    found = projects.detail(session(), user_id(), project_id)
    project = ProjectResponse.model_validate(found.project).model_dump()
    return ProjectDetailResponse.model_validate(
        {**project, "crawl_jobs": found.crawl_jobs, "crawl_job_count": found.crawl_job_count}
    )


@router.patch("/projects/<project_id>", tags=["projects"])
def update_project(project_id: Id, changes: ProjectUpdate) -> ProjectResponse:
    return ProjectResponse.model_validate(projects.update(session(), user_id(), project_id, changes))


@router.delete("/projects/<project_id>", tags=["projects"], status_code=204)
def delete_project(project_id: Id) -> Response[str]:
    projects.delete(session(), user_id(), project_id)
    return no_content()
