"""Pydantic v2 request and response schemas for every resource."""

from pixcrawler.schemas.activity import ActivityLogResponse
from pixcrawler.schemas.common import Page, RequestModel, ResponseModel
from pixcrawler.schemas.crawl import CrawlJobCreate, CrawlJobResponse, Provider
from pixcrawler.schemas.export import (
    ExportFormat,
    ExportJobCreate,
    ExportJobResponse,
    ExportLayout,
    ExportOptions,
)
from pixcrawler.schemas.image import ImageDetailResponse, ImageResponse
from pixcrawler.schemas.profile import ProfileResponse, ProfileUpdate
from pixcrawler.schemas.project import ProjectCreate, ProjectDetailResponse, ProjectResponse, ProjectUpdate
from pixcrawler.schemas.validation import ValidationJobCreate, ValidationJobResponse, ValidationRules

__all__ = [
    "ActivityLogResponse",
    "CrawlJobCreate",
    "CrawlJobResponse",
    "ExportFormat",
    "ExportJobCreate",
    "ExportJobResponse",
    "ExportLayout",
    "ExportOptions",
    "ImageDetailResponse",
    "ImageResponse",
    "Page",
    "ProfileResponse",
    "ProfileUpdate",
    "ProjectCreate",
    "ProjectDetailResponse",
    "ProjectResponse",
    "ProjectUpdate",
    "Provider",
    "RequestModel",
    "ResponseModel",
    "ValidationJobCreate",
    "ValidationJobResponse",
    "ValidationRules",
]
