"""Projects: a user's folders of crawl jobs. Deleting one removes its rows and every object it stored."""

from __future__ import annotations

import uuid

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from pixcrawler import bucket, storage
from pixcrawler.models import Project, ProjectStatus
from pixcrawler.schemas import ProjectCreate, ProjectUpdate
from pixcrawler.services import activity
from pixcrawler.services.errors import found


def owned(user_id: uuid.UUID, status: ProjectStatus | None = None) -> Select[Project]:
    query = select(Project).where(Project.user_id == user_id)
    return query if status is None else query.where(Project.status == status)


def get(session: Session, user_id: uuid.UUID, project_id: int) -> Project:
    return found(session.scalars(owned(user_id).where(Project.id == project_id)).one_or_none(), "Project", project_id)


def create(session: Session, user_id: uuid.UUID, data: ProjectCreate) -> Project:
    project = Project(user_id=user_id, **data.model_dump())
    session.add(project)
    session.flush()
    activity.record(session, user_id, "project.created", "project", project.id, name=project.name)
    return project


def update(session: Session, user_id: uuid.UUID, project_id: int, changes: ProjectUpdate) -> Project:
    project = get(session, user_id, project_id)
    fields = changes.model_dump(exclude_unset=True)
    for name, value in fields.items():
        setattr(project, name, value)
    if fields:
        session.flush()
        activity.record(session, user_id, "project.updated", "project", project.id, fields=sorted(fields))
    return project


def delete(session: Session, user_id: uuid.UUID, project_id: int) -> int:
    """Delete the rows (the database cascades to jobs and images), then the objects; returns objects removed.

    The objects go last but inside the transaction: if S3 refuses, the rows roll back and the client can
    retry; a half-deleted project never looks deleted.
    """
    project = get(session, user_id, project_id)
    name = project.name
    session.delete(project)
    session.flush()
    removed = sum(bucket.delete(bucket.keys_under(prefix)) for prefix in storage.project_prefixes(project_id))
    activity.record(session, user_id, "project.deleted", "project", project_id, name=name, objects_removed=removed)
    return removed
