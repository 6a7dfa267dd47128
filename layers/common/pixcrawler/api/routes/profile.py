from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from pixcrawler.api.context import current_user, session
from pixcrawler.schemas import ProfileResponse, ProfileUpdate
from pixcrawler.services import profiles

router = APIGatewayHttpRouter()


@router.get("/me", tags=["profile"])
def get_me() -> ProfileResponse:
    return ProfileResponse.model_validate(current_user())


@router.patch("/me", tags=["profile"])
def update_me(changes: ProfileUpdate) -> ProfileResponse:
    return ProfileResponse.model_validate(profiles.update(session(), current_user(), changes))
