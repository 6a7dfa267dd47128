"""Constraints and cascades enforced by PostgreSQL itself, and ORM ↔ schema round trips."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from pixcrawler import sqlstate
from pixcrawler.models import (
    ActivityLog,
    CrawlChunk,
    CrawlJob,
    ExportJob,
    Image,
    JobStatus,
    Profile,
    Project,
    ValidationJob,
)
from pixcrawler.schemas import (
    ActivityLogResponse,
    CrawlJobCreate,
    CrawlJobResponse,
    ExportJobCreate,
    ProfileResponse,
    ValidationJobCreate,
)
from pixcrawler.services import images
from pixcrawler.sqlstate import CHECK_VIOLATION, FOREIGN_KEY_VIOLATION, UNIQUE_VIOLATION


def make_tree(session: Session) -> Profile:
    """A profile with one project, crawl job, chunk, image, validation job, export job and activity row."""
    profile = Profile(id=uuid.uuid4(), email=f"{uuid.uuid4().hex[:8]}@example.com")
    project = Project(name="cats", user=profile)
    job = CrawlJob(project=project, name="job", keywords=["cat"], max_images=10, providers=["openverse"])
    job.chunks.append(CrawlChunk(chunk_index=0, keyword="cat", provider="openverse"))
    job.images.append(Image(original_url="http://x/a.jpg", filename="a.jpg", storage_url="k/a.jpg", sha256="a" * 64))
    job.validation_jobs.append(ValidationJob(name="v"))
    session.add_all(
        [
            profile,
            ExportJob(crawl_job=job, user=profile, name="e", format="zip"),
            ActivityLog(user=profile, action="project.created", resource_type="project"),
        ]
    )
    session.commit()
    return profile


def count(session: Session, model: type) -> int:
    return len(session.scalars(select(model)).all())


def test_project_for_missing_profile_is_rejected(session: Session) -> None:
    session.add(Project(name="orphan", user_id=uuid.uuid4()))
    with pytest.raises(DBAPIError) as raised:
        session.commit()
    assert sqlstate.of(raised.value) == FOREIGN_KEY_VIOLATION


def test_email_is_unique(session: Session) -> None:
    session.add(Profile(id=uuid.uuid4(), email="same@example.com"))
    session.commit()
    session.add(Profile(id=uuid.uuid4(), email="same@example.com"))
    with pytest.raises(DBAPIError) as raised:
        session.commit()
    assert sqlstate.of(raised.value) == UNIQUE_VIOLATION


def test_same_image_twice_in_one_job_is_rejected(session: Session) -> None:
    profile = make_tree(session)
    job = profile.projects[0].crawl_jobs[0]
    session.add(Image(crawl_job=job, original_url="http://y", filename="b", storage_url="k", sha256="a" * 64))
    with pytest.raises(DBAPIError) as raised:
        session.commit()
    assert sqlstate.of(raised.value) == UNIQUE_VIOLATION


@pytest.mark.parametrize(("column", "value"), [("downloaded_images", -1), ("progress", 101), ("status", "lost")])
def test_counters_and_statuses_are_constrained(session: Session, column: str, value: object) -> None:
    make_tree(session)
    with pytest.raises(DBAPIError) as raised:
        session.execute(text(f"UPDATE crawl_jobs SET {column} = :value"), {"value": value})
    assert sqlstate.of(raised.value) == CHECK_VIOLATION


def test_deleting_a_profile_cascades_and_keeps_activity(session: Session) -> None:
    profile = make_tree(session)
    session.delete(profile)
    session.commit()
    session.expunge_all()
    for model in (Project, CrawlJob, CrawlChunk, Image, ValidationJob, ExportJob, Profile):
        assert count(session, model) == 0, model.__name__
    logs = session.scalars(select(ActivityLog)).all()
    assert [(log.action, log.user_id) for log in logs] == [("project.created", None)]


def test_orm_objects_round_trip_through_schemas(session: Session) -> None:
    profile = make_tree(session)
    session.expire_all()
    project = session.get_one(Project, profile.projects[0].id)
    job = CrawlJobResponse.model_validate(project.crawl_jobs[0])
    assert job.keywords == ["cat"]
    assert job.chunk_progress == 0.0
    assert ProfileResponse.model_validate(profile).role == "user"
    image = images.response(project.crawl_jobs[0].images[0])
    assert image.sha256 == "a" * 64 and image.is_valid is None and image.thumbnail_url is None
    log = ActivityLogResponse.model_validate(session.scalars(select(ActivityLog)).one())
    assert log.metadata == {}
    job = project.crawl_jobs[0]
    job.total_chunks, job.completed_chunks, job.failed_chunks = 4, 2, 1
    assert CrawlJobResponse.model_validate(job).chunk_progress == 0.75
    assert CrawlJobResponse.model_validate(job).status is JobStatus.PENDING


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "j", "keywords": [], "max_images": 5}, "keywords"),
        ({"name": "j", "keywords": ["  "], "max_images": 5}, "keywords"),
        ({"name": "j", "keywords": ["cat"], "max_images": 0}, "max_images"),
        ({"name": "j", "keywords": ["cat"], "max_images": 100_001}, "max_images"),
        ({"name": "j", "keywords": ["cat"], "max_images": 5, "providers": ["bing"]}, "providers"),
        ({"name": "j", "keywords": ["cat"], "max_images": 5, "colour": "red"}, "colour"),
        ({"name": "x" * 201, "keywords": ["cat"], "max_images": 5}, "name"),
    ],
)
def test_crawl_job_requests_name_the_bad_field(payload: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        CrawlJobCreate.model_validate(payload)
    assert field in {str(part) for error in raised.value.errors() for part in error["loc"]}


def test_crawl_job_request_trims_and_deduplicates_keywords() -> None:
    job = CrawlJobCreate.model_validate({"name": "j", "keywords": [" cat", "cat ", "dog"], "max_images": 5})
    assert job.keywords == ["cat", "dog"]


def test_rule_and_option_bounds_are_checked() -> None:
    with pytest.raises(ValidationError, match="min_width must not exceed max_width"):
        ValidationJobCreate.model_validate({"name": "v", "rules": {"min_width": 500, "max_width": 100}})
    with pytest.raises(ValidationError, match="link_lifetime_hours"):
        ExportJobCreate.model_validate({"name": "e", "options": {"link_lifetime_hours": 24 * 8}})
    with pytest.raises(ValidationError, match="unknown_rule"):
        ValidationJobCreate.model_validate({"name": "v", "rules": {"unknown_rule": 1}})
