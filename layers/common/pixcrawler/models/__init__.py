"""The SQLAlchemy models; importing this package registers every table on `Base.metadata`."""

from sqlalchemy.orm import configure_mappers

from pixcrawler import snapstart
from pixcrawler.models.activity import ActivityLog
from pixcrawler.models.base import Base, JobStatus
from pixcrawler.models.crawl import CrawlChunk, CrawlJob
from pixcrawler.models.export import ExportItem, ExportJob
from pixcrawler.models.hosts import HostBudget, RobotsFile
from pixcrawler.models.image import Image
from pixcrawler.models.profile import Profile, Role
from pixcrawler.models.project import Project, ProjectStatus
from pixcrawler.models.validation import ValidationBatch, ValidationJob

__all__ = [
    "ActivityLog",
    "Base",
    "CrawlChunk",
    "CrawlJob",
    "ExportItem",
    "ExportJob",
    "HostBudget",
    "Image",
    "JobStatus",
    "Profile",
    "Project",
    "ProjectStatus",
    "RobotsFile",
    "Role",
    "ValidationBatch",
    "ValidationJob",
]

snapstart.before_snapshot(configure_mappers)
"""SQLAlchemy resolves the mappers' relationships on the first query (about 40 ms): do it into the snapshot."""
