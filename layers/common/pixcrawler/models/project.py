from __future__ import annotations

import enum
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pixcrawler.models.base import Base, CreatedAt, UpdatedAt, enum_column

if TYPE_CHECKING:
    from pixcrawler.models.crawl import CrawlJob
    from pixcrawler.models.profile import Profile


class ProjectStatus(enum.StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"


class Project(Base):
    """A user's folder of crawl jobs; deleting it removes its jobs, images and exports, rows and objects."""

    __tablename__ = "projects"
    __table_args__ = (
        Index(
            "ix_project_user_id",
            "user_id",
            "id",
            info={
                "serves": "`GET /v1/projects` keyset pages (`user_id = ? AND id > ? ORDER BY id`), the ownership "
                "check every route makes (`user_id = ? AND id = ?`), and the cascade from `profiles`."
            },
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"))
    status: Mapped[ProjectStatus] = mapped_column(
        enum_column(ProjectStatus, "project_status"), default=ProjectStatus.ACTIVE, server_default="active"
    )
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]

    user: Mapped[Profile] = relationship(back_populates="projects")
    crawl_jobs: Mapped[list[CrawlJob]] = relationship(
        back_populates="project", cascade="all, delete-orphan", passive_deletes=True, order_by="CrawlJob.id"
    )
