"""Projects: a user's folders of crawl jobs. Deleting one removes its rows and every object it stored."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Select, func, select
from sqlalchemy import delete as delete_rows
from sqlalchemy.orm import Session

from pixcrawler import bucket, object_keys
from pixcrawler.models import CrawlJob, Project, ProjectStatus
from pixcrawler.schemas import ProjectCreate, ProjectUpdate
from pixcrawler.services import activity
from pixcrawler.services.errors import NotFound, found
from pixcrawler.services.transitions import Lock, apply_changes, locked


def owned(user_id: uuid.UUID, status: ProjectStatus | None = None) -> Select[Project]:
    query = select(Project).where(Project.user_id == user_id)
    return query if status is None else query.where(Project.status == status)


def get(session: Session, user_id: uuid.UUID, project_id: int, lock: Lock | None = None) -> Project:
    query = locked(owned(user_id).where(Project.id == project_id), Project, lock)
    return found(session.scalars(query).one_or_none(), "Project", project_id)


RECENT_CRAWL_JOBS = 20


@dataclass(frozen=True)
class ProjectDetail:
    """A project with its newest crawl jobs and how many it has.

    Embedding every job made one busy project's page cost 217 ms at 4,592 jobs (benchmarks/queries.py);
    the newest few and the count stay under a millisecond, and `/projects/{id}/crawl-jobs` pages the rest.
    """

    project: Project
    crawl_jobs: list[CrawlJob]
    crawl_job_count: int


def detail(session: Session, user_id: uuid.UUID, project_id: int) -> ProjectDetail:
    project = get(session, user_id, project_id)
    jobs = select(CrawlJob).where(CrawlJob.project_id == project.id).order_by(CrawlJob.id.desc())
    count = select(func.count()).select_from(CrawlJob).where(CrawlJob.project_id == project.id)
    return ProjectDetail(project, list(session.scalars(jobs.limit(RECENT_CRAWL_JOBS))), session.scalar(count) or 0)


def create(session: Session, user_id: uuid.UUID, data: ProjectCreate) -> Project:
    project = Project(user_id=user_id, **data.model_dump())
    session.add(project)
    session.flush()
    activity.record(session, user_id, "project.created", "project", project.id, name=project.name)
    return project


def update(session: Session, user_id: uuid.UUID, project_id: int, changes: ProjectUpdate) -> Project:
    """Change the locked row: a concurrent delete makes this a 404, identical concurrent changes log once."""
    project = get(session, user_id, project_id, Lock.UPDATE)
    changed = apply_changes(project, changes.model_dump(exclude_unset=True))
    if changed:
        session.flush()
        activity.record(session, user_id, "project.updated", "project", project.id, fields=changed)
    return project


def delete(session: Session, user_id: uuid.UUID, project_id: int) -> int:
    """Delete the rows (the database cascades to jobs and images), then the objects; returns objects removed.

    One `DELETE ... RETURNING`: of concurrent deletes exactly one removes the row and goes on to the objects
    and the activity entry; the others wait for its commit, find nothing and answer 404. The objects go last but
    inside the transaction: if S3 refuses, the rows roll back and the client can retry; a half-deleted project
    never looks deleted.
    """
    name = session.scalar(
        delete_rows(Project)
        .where(Project.id == project_id, Project.user_id == user_id)
        .returning(Project.name)
        .execution_options(synchronize_session=False)
    )
    if name is None:
        raise NotFound(f"Project {project_id} not found.")
    prefixes = object_keys.project_prefixes(project_id)
    removed = sum(bucket.delete(bucket.keys_under(prefix)) for prefix in prefixes)
    for prefix in prefixes:  # a running export's uploads (a WebDataset's shards stay unjoined until it completes)
        bucket.abort_uploads(prefix)
    activity.record(session, user_id, "project.deleted", "project", project_id, name=name, objects_removed=removed)
    return removed
