"""Profiles: created from the identity provider's claims on a user's first request."""

from __future__ import annotations

import uuid

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from pixcrawler.models import Profile
from pixcrawler.schemas import ProfileUpdate
from pixcrawler.services import activity
from pixcrawler.services.errors import Conflict


def ensure(session: Session, user_id: uuid.UUID, email: str) -> Profile:
    """The user's profile, created on first sight; concurrent first requests race safely on the primary key."""
    profile = session.get(Profile, user_id)
    if profile is not None:
        return profile
    session.execute(insert(Profile).values(id=user_id, email=email).on_conflict_do_nothing())
    profile = session.get(Profile, user_id)
    if profile is None:
        raise Conflict(f"The email {email} already belongs to another account.")
    return profile


def update(session: Session, profile: Profile, changes: ProfileUpdate) -> Profile:
    fields = changes.model_dump(exclude_unset=True)
    for name, value in fields.items():
        setattr(profile, name, value)
    if fields:
        session.flush()
        activity.record(session, profile.id, "profile.updated", "profile", str(profile.id), fields=sorted(fields))
    return profile
