"""Profiles: created from the identity provider's claims on a user's first request."""

from __future__ import annotations

import uuid

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from pixcrawler.models import Profile
from pixcrawler.schemas import ProfileUpdate
from pixcrawler.services import activity
from pixcrawler.services.errors import Conflict
from pixcrawler.services.transitions import apply_changes


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
    """Change the profile re-read under a row lock, so identical concurrent changes log once."""
    session.refresh(profile, with_for_update=True)
    changed = apply_changes(profile, changes.model_dump(exclude_unset=True))
    if changed:
        session.flush()
        activity.record(session, profile.id, "profile.updated", "profile", str(profile.id), fields=changed)
    return profile
