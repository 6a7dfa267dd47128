"""docs/DATABASE_SCHEMA.md is generated from the models and cannot drift from them or from the migrations."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import Column, Engine, Index, Integer, MetaData, inspect, text

from pixcrawler.models import Base
from pixcrawler_local.functions import load_module
from tests.conftest import ROOT

generator: ModuleType = load_module(ROOT / "docs" / "generate_schema.py", "generate_schema")


def test_committed_document_is_what_the_models_generate() -> None:
    diff = generator.check()
    assert diff == "", f"docs/DATABASE_SCHEMA.md is out of date: run `{generator.COMMAND}` and commit it.\n{diff}"


def test_upgrade_head_yields_exactly_what_the_document_describes(engine: Engine) -> None:
    diff = generator.database_differences(engine)
    assert diff == "", f"`alembic upgrade head` differs from docs/DATABASE_SCHEMA.md (and the models):\n{diff}"


def copy_of_models() -> MetaData:
    """The models' tables in a metadata of their own, to change without touching the real ones."""
    metadata = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        copy = table.to_metadata(metadata)
        info = {index.name: index.info for index in table.indexes}
        for index in copy.indexes:  # Table.to_metadata does not carry an index's info
            index.info.update(info[index.name])
    return metadata


def drifted_models() -> MetaData:
    """The models with one column and one index more, as if someone changed a model and forgot the rest."""
    metadata = copy_of_models()
    images = metadata.tables["images"]
    images.append_column(Column("blur_score", Integer))
    Index("ix_images_blur_score", images.c.blur_score, info={"serves": "images by blur"})
    return metadata


def test_a_model_change_without_regenerating_is_caught() -> None:
    committed = (ROOT / "docs" / "DATABASE_SCHEMA.md").read_text()
    regenerated = generator.generate(metadata=drifted_models())
    diff = generator.differences(regenerated, committed, "generated", "committed")
    assert "+| `blur_score` | INTEGER | yes |" in diff
    assert "+| `ix_images_blur_score` | index | `blur_score` | images by blur |" in diff


def test_a_database_that_lacks_a_model_change_is_caught(engine: Engine) -> None:
    diff = generator.database_differences(engine, drifted_models())
    assert "+| `blur_score` | INTEGER | yes |" in diff  # "+": in the models, not in the database
    assert "+| `ix_images_blur_score` |" in diff


def test_a_database_change_the_models_lack_is_caught(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("ALTER TABLE images ADD COLUMN blur_score integer"))
        connection.execute(text("CREATE INDEX ix_images_blur_score ON images (blur_score)"))
        inspected = generator.render_reference(generator.describe_database(inspect(connection), Base.metadata))
        connection.rollback()
    modelled = generator.render_reference(generator.describe_models(Base.metadata))
    diff = generator.differences(modelled, inspected, "models", "database")
    assert "-| `blur_score` | INTEGER | yes |  |  | (not in the models) |" in diff  # "-": only in the database
    assert "-| `ix_images_blur_score` | index | `blur_score` | (not in the models) |" in diff


def test_an_index_that_does_not_say_what_it_serves_stops_the_generator() -> None:
    metadata = copy_of_models()
    Index("ix_images_keyword", metadata.tables["images"].c.keyword)
    with pytest.raises(generator.SchemaDocError, match="ix_images_keyword does not say what it is for"):
        generator.describe_models(metadata)


def test_regenerating_keeps_the_measured_section(tmp_path: Path) -> None:
    path = tmp_path / "schema.md"
    path.write_text(generator.render_document(Base.metadata, "| measured | 1.00 ms |\n"))
    assert "| measured | 1.00 ms |" in generator.generate(path)
    assert generator.generate(path) == path.read_text()
