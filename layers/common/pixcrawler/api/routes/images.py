from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from pixcrawler.api import pagination
from pixcrawler.api.context import session, user_id
from pixcrawler.api.routes.params import Id, no_content
from pixcrawler.models import Image
from pixcrawler.schemas import ImageDetailResponse, ImageResponse, Page
from pixcrawler.services import images
from pixcrawler.services.images import Validity

router = APIGatewayHttpRouter()


@router.get("/crawl-jobs/<crawl_job_id>/images", tags=["images"])
def list_images(
    crawl_job_id: Id,
    keyword: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    validity: Annotated[Validity | None, Query()] = None,
    limit: pagination.Limit = pagination.DEFAULT_LIMIT,
    cursor: pagination.Cursor = None,
) -> Page[ImageResponse]:
    query = images.of_crawl_job(session(), user_id(), crawl_job_id, keyword, validity)
    return pagination.page(query, Image.id, ImageResponse, limit, cursor, convert=images.response)


@router.get("/images/<image_id>", tags=["images"])
def get_image(image_id: Id) -> ImageDetailResponse:
    """Metadata plus `view_url` and `thumbnail_url`, presigned links valid for 15 minutes."""
    return images.detail(images.get(session(), user_id(), image_id))


@router.delete("/images/<image_id>", tags=["images"], status_code=204)
def delete_image(image_id: Id) -> Response[str]:
    images.delete(session(), user_id(), image_id)
    return no_content()
