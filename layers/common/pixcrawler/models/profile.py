from __future__ import annotations

import enum
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pixcrawler.models.base import Base, CreatedAt, UpdatedAt, enum_column

if TYPE_CHECKING:
    from pixcrawler.models.activity import ActivityLog
    from pixcrawler.models.export import ExportJob
    from pixcrawler.models.project import Project


class Role(enum.StrEnum):
    USER = "user"
    ADMIN = "admin"


class Profile(Base):
    """A user, keyed by the identity provider's `sub` so the JWT alone identifies the row."""

    __tablename__ = "profiles"
    __table_args__ = (
        Index(
            "ix_profiles_email",
            "email",
            unique=True,
            info={
                "serves": "One account per email: `profiles.ensure` inserts the profile on a user's first request "
                "and answers 409 when the email belongs to another `sub`."
            },
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    full_name: Mapped[str | None] = mapped_column(String(200))
    avatar_url: Mapped[str | None] = mapped_column(Text)
    role: Mapped[Role] = mapped_column(enum_column(Role, "profile_role"), default=Role.USER, server_default="user")
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]

    projects: Mapped[list[Project]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
    activity_logs: Mapped[list[ActivityLog]] = relationship(back_populates="user", passive_deletes=True)
    export_jobs: Mapped[list[ExportJob]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
