"""Write docs/DATABASE_SCHEMA.md from the SQLAlchemy models, or check that it is current.

    python docs/generate_schema.py            # (re)write the document
    python docs/generate_schema.py --check    # exit 1 with a diff when the document is out of date

The reference half (tables, columns, keys, foreign keys, indexes, the ER diagram, what each delete removes) is
rendered from `pixcrawler.models.Base.metadata`: table purposes from the model docstrings, column notes from
`doc=`, and the query each index serves from the index's `info={"serves": ...}`, so the prose lives beside
the thing it describes and cannot be forgotten (an index without it stops the generator). The same renderer
runs over a live database reflected with SQLAlchemy's inspector (`database_differences`): the tests migrate a
database with `alembic upgrade head` and require the two renderings to be identical.

The measured section between the `measured` markers is written by `python benchmarks/queries.py --write`
and kept as it is by every regeneration. This script lives under docs/ so it ships in no Lambda package.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "common"))

from sqlalchemy import CheckConstraint, Column, Engine, MetaData, UniqueConstraint, inspect  # noqa: E402
from sqlalchemy.dialects import postgresql  # noqa: E402
from sqlalchemy.engine.reflection import Inspector  # noqa: E402
from sqlalchemy.sql.elements import ClauseElement  # noqa: E402
from sqlalchemy.types import TypeEngine  # noqa: E402

DOCUMENT = ROOT / "docs" / "DATABASE_SCHEMA.md"
COMMAND = "python docs/generate_schema.py"
MEASURED_START = "<!-- measured:start (written by python benchmarks/queries.py --write; kept by the generator) -->"
MEASURED_END = "<!-- measured:end -->"
NOT_MEASURED = "Not measured yet: run `python benchmarks/queries.py --write`.\n"
NOT_MODELLED = "(not in the models)"
DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]

DELETE_ROOTS = {
    "profiles": (
        "No API route deletes a profile: the identity provider owns the account. An operator who deletes the "
        "row deletes everything below in one statement, but nothing removes the objects of the user's "
        "projects: delete each project through `DELETE /v1/projects/{id}` first (that removes its objects), "
        "then the profile. The activity rows stay, with `user_id` set to NULL, so the audit trail outlives "
        "its user."
    ),
    "projects": (
        "`DELETE /v1/projects/{id}` (`services/projects.py: delete`) deletes the row, letting the database "
        "cascade, then lists and batch-deletes (`bucket.delete`, 1,000 keys per request) every object under "
        "`object_keys.project_prefixes`: `projects/{id}/` (every image of every crawl job) and `exports/{id}/` "
        "(every export archive), all inside the same transaction: if S3 refuses, the rows roll back and the "
        "request can be retried; a project never looks deleted while its objects remain. The activity log "
        "records `project.deleted` with the number of objects removed."
    ),
    "crawl_jobs": (
        "No API route deletes a crawl job on its own: its rows go with its project (above), and its objects "
        "with the project's `projects/{project}/` prefix. While the job runs, the chunk commit deletes uploads "
        "that got no row, and the chunk that ends the job lists `projects/{project}/crawl-jobs/{job}/` and "
        "deletes every object no image row references (`crawl/worker.py`), so the prefix holds exactly the "
        "job's rows' objects. `DELETE /v1/images/{id}` removes one image's row and object together and keeps "
        "the job's counters true."
    ),
}


class SchemaDocError(RuntimeError):
    """The models lack something the document must say (a table purpose, the query an index serves)."""


# ------------------------------------------------------------------------------------------------ description


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str
    nullable: bool
    server_default: str
    orm_default: str
    note: str


@dataclass(frozen=True)
class KeyInfo:
    name: str
    columns: tuple[str, ...]
    serves: str = ""


@dataclass(frozen=True)
class ForeignKeyInfo:
    name: str
    columns: tuple[str, ...]
    target: str
    target_columns: tuple[str, ...]
    ondelete: str
    nullable: bool


@dataclass(frozen=True)
class CheckInfo:
    name: str
    condition: str


@dataclass(frozen=True)
class TableInfo:
    name: str
    purpose: str
    columns: tuple[ColumnInfo, ...]
    primary_key: KeyInfo
    uniques: tuple[KeyInfo, ...]
    foreign_keys: tuple[ForeignKeyInfo, ...]
    indexes: tuple[KeyInfo, ...]
    unique_indexes: frozenset[str]
    checks: tuple[CheckInfo, ...]


def _type(type_: TypeEngine[Any]) -> str:
    return type_.compile(dialect=DIALECT)


def _literal(value: Any) -> str:
    """A server default as PostgreSQL reports it, without its cast: `'pending'`, `0`, `now()`."""
    if isinstance(value, ClauseElement):
        return str(value.compile(dialect=DIALECT))
    text = str(value)
    return text if re.fullmatch(r"-?\d+(\.\d+)?", text) else f"'{text}'"


def _server_default(column: Column[Any]) -> str:
    if column.table.autoincrement_column is column:
        return "sequence"
    return _literal(column.server_default.arg) if column.server_default is not None else ""  # type: ignore[attr-defined]


def _reflected_default(text: str | None, autoincrement: bool) -> str:
    if text is None:
        return ""
    if text.startswith("nextval(") and autoincrement:
        return "sequence"
    return re.sub(r"::[a-z ]+(\[\])?", "", text)


def _orm_default(column: Column[Any]) -> str:
    """What the ORM sets when Python leaves the attribute unset (often the same as the server default)."""
    parts = []
    default = column.default
    if default is not None:
        arg = default.arg  # type: ignore[attr-defined]
        if getattr(default, "is_callable", False):
            parts.append(f"{getattr(arg, '__wrapped__', arg).__name__}()")
        elif isinstance(arg, Enum):
            parts.append(f"'{arg.value}'")
        else:
            parts.append(_literal(arg))
    if column.onupdate is not None:
        parts.append(f"on update {_literal(column.onupdate.arg)}")  # type: ignore[attr-defined]
    return ", ".join(parts)


def _serves(item: Any, kind: str, name: str) -> str:
    serves = item.info.get("serves", "")
    if not serves:
        raise SchemaDocError(
            f'{kind} {name} does not say what it is for: give it info={{"serves": "..."}} naming the query it serves.'
        )
    return str(serves)


def _purpose(table_name: str) -> str:
    """The docstring of the model class mapped to `table_name` (a copy of the metadata keeps the names)."""
    from pixcrawler.models import Base

    for mapper in Base.registry.mappers:
        if getattr(mapper.local_table, "name", None) == table_name:
            doc = mapper.class_.__doc__
            if not doc:
                raise SchemaDocError(f"Model {mapper.class_.__name__} has no docstring to say what {table_name} holds.")
            return " ".join(doc.split())
    raise SchemaDocError(f"Table {table_name} has no model class.")


def _order(metadata: MetaData) -> list[str]:
    return [table.name for table in metadata.sorted_tables]


def describe_models(metadata: MetaData) -> list[TableInfo]:
    tables = []
    for table in metadata.sorted_tables:
        constraints = sorted(table.constraints, key=lambda c: str(c.name))
        tables.append(
            TableInfo(
                name=table.name,
                purpose=_purpose(table.name),
                columns=tuple(
                    ColumnInfo(
                        column.name,
                        _type(column.type),
                        bool(column.nullable),
                        _server_default(column),
                        _orm_default(column),
                        " ".join((column.doc or "").split()),
                    )
                    for column in table.columns
                ),
                primary_key=KeyInfo(str(table.primary_key.name), tuple(c.name for c in table.primary_key.columns)),
                uniques=tuple(
                    KeyInfo(str(c.name), tuple(col.name for col in c.columns), _serves(c, "Unique key", str(c.name)))
                    for c in constraints
                    if isinstance(c, UniqueConstraint)
                ),
                foreign_keys=tuple(
                    ForeignKeyInfo(
                        str(fk.name),
                        tuple(c.name for c in fk.columns),
                        fk.referred_table.name,
                        tuple(element.column.name for element in fk.elements),
                        fk.ondelete or "NO ACTION",
                        all(c.nullable for c in fk.columns),
                    )
                    for fk in sorted(table.foreign_key_constraints, key=lambda fk: str(fk.name))
                ),
                indexes=tuple(
                    KeyInfo(
                        str(index.name),
                        tuple(c.name for c in index.columns),
                        _serves(index, "Index", str(index.name)),
                    )
                    for index in sorted(table.indexes, key=lambda index: str(index.name))
                ),
                unique_indexes=frozenset(str(index.name) for index in table.indexes if index.unique),
                checks=tuple(
                    CheckInfo(str(c.name), _condition(c)) for c in constraints if isinstance(c, CheckConstraint)
                ),
            )
        )
    return tables


def _condition(check: CheckConstraint) -> str:
    return str(check.sqltext.compile(dialect=DIALECT, compile_kwargs={"literal_binds": True}))


def describe_database(inspector: Inspector, metadata: MetaData) -> list[TableInfo]:
    """The live schema in the same shape; the prose (purposes, notes, what indexes serve, CHECK text) is
    looked up in the models by name, so the two renderings differ exactly where the structure does."""
    models = {table.name: table for table in describe_models(metadata)}
    order = _order(metadata)
    live = set(inspector.get_table_names()) - {"alembic_version"}
    names = [name for name in order if name in live] + sorted(live - set(order))
    tables = []
    for name in names:
        model = models.get(name)
        known_columns = {c.name: c for c in model.columns} if model else {}
        known_keys = {k.name: k.serves for k in (*model.indexes, *model.uniques)} if model else {}
        known_checks = {c.name: c.condition for c in model.checks} if model else {}
        reflected = inspector.get_columns(name)
        position = {column: n for n, column in enumerate(known_columns)}
        reflected.sort(key=lambda c: position.get(c["name"], len(position)))
        pk = inspector.get_pk_constraint(name)
        columns = tuple(
            ColumnInfo(
                c["name"],
                _type(c["type"]),
                bool(c["nullable"]),
                _reflected_default(c.get("default"), bool(c.get("autoincrement"))),
                known_columns[c["name"]].orm_default if c["name"] in known_columns else "",
                known_columns[c["name"]].note if c["name"] in known_columns else NOT_MODELLED,
            )
            for c in reflected
        )
        nullable = {c.name: c.nullable for c in columns}
        indexes = [i for i in inspector.get_indexes(name) if not i.get("duplicates_constraint")]
        tables.append(
            TableInfo(
                name=name,
                purpose=model.purpose if model else NOT_MODELLED,
                columns=columns,
                primary_key=KeyInfo(str(pk["name"]), tuple(pk["constrained_columns"])),
                uniques=tuple(
                    KeyInfo(str(u["name"]), tuple(u["column_names"]), known_keys.get(str(u["name"]), NOT_MODELLED))
                    for u in sorted(inspector.get_unique_constraints(name), key=lambda u: str(u["name"]))
                ),
                foreign_keys=tuple(
                    ForeignKeyInfo(
                        str(fk["name"]),
                        tuple(fk["constrained_columns"]),
                        fk["referred_table"],
                        tuple(fk["referred_columns"]),
                        fk.get("options", {}).get("ondelete") or "NO ACTION",
                        all(nullable[c] for c in fk["constrained_columns"]),
                    )
                    for fk in sorted(inspector.get_foreign_keys(name), key=lambda fk: str(fk["name"]))
                ),
                indexes=tuple(
                    KeyInfo(
                        str(i["name"]),
                        tuple(str(c) for c in i["column_names"]),
                        known_keys.get(str(i["name"]), NOT_MODELLED),
                    )
                    for i in sorted(indexes, key=lambda i: str(i["name"]))
                ),
                unique_indexes=frozenset(str(i["name"]) for i in indexes if i["unique"]),
                checks=tuple(
                    CheckInfo(str(c["name"]), known_checks.get(str(c["name"]), f"{c['sqltext']} {NOT_MODELLED}"))
                    for c in sorted(inspector.get_check_constraints(name), key=lambda c: str(c["name"]))
                ),
            )
        )
    return tables


# ------------------------------------------------------------------------------------------------ rendering


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _code(items: Iterable[str]) -> str:
    return ", ".join(f"`{item}`" for item in items)


def render_table(table: TableInfo) -> list[str]:
    fk_of = {column: fk for fk in table.foreign_keys for column in fk.columns}
    lines = [f"### `{table.name}`", "", table.purpose, ""]
    lines += [
        "| column | type | null | server default | ORM default | notes |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for column in table.columns:
        notes = []
        if column.name in table.primary_key.columns:
            notes.append("primary key")
        if column.name in fk_of:
            fk = fk_of[column.name]
            notes.append(f"→ `{fk.target}.{', '.join(fk.target_columns)}` ON DELETE {fk.ondelete}")
        if column.note:
            notes.append(column.note)
        lines.append(
            f"| `{column.name}` | {column.type} | {'yes' if column.nullable else 'no'} | "
            f"{f'`{column.server_default}`' if column.server_default else ''} | "
            f"{f'`{column.orm_default}`' if column.orm_default else ''} | {_cell('; '.join(notes))} |"
        )
    lines += ["", f"Primary key `{table.primary_key.name}` ({_code(table.primary_key.columns)})."]
    if table.foreign_keys:
        lines += ["", "Foreign keys:", ""]
        lines += [
            f"- `{fk.name}`: ({_code(fk.columns)}) → `{fk.target}` ({_code(fk.target_columns)}), "
            f"ON DELETE {fk.ondelete}{', nullable' if fk.nullable else ''}"
            for fk in table.foreign_keys
        ]
    keys = [(key, "unique constraint") for key in table.uniques]
    keys += [(key, "unique index" if key.name in table.unique_indexes else "index") for key in table.indexes]
    if keys:
        lines += ["", "| index | kind | columns | serves |", "| --- | --- | --- | --- |"]
        lines += [f"| `{k.name}` | {kind} | {_code(k.columns)} | {_cell(k.serves)} |" for k, kind in keys]
    if table.checks:
        lines += ["", "Check constraints:", ""]
        lines += [f"- `{check.name}`: `{check.condition}`" for check in table.checks]
    return [*lines, ""]


def _mermaid_type(type_: str) -> str:
    simple = type_.split("(")[0].lower()
    return {"timestamp with time zone": "timestamptz", "character varying": "varchar"}.get(simple, simple).replace(
        " ", "_"
    )


def render_diagram(tables: list[TableInfo]) -> list[str]:
    """A Mermaid erDiagram: a nullable foreign key is "zero or one" parent, a required one "exactly one"."""
    lines = ["```mermaid", "erDiagram"]
    for table in tables:
        for fk in table.foreign_keys:
            parent = "|o" if fk.nullable else "||"
            lines.append(f'    {fk.target} {parent}--o{{ {table.name} : "{", ".join(fk.columns)} ({fk.ondelete})"')
    for table in tables:
        fk_columns = {column for fk in table.foreign_keys for column in fk.columns}
        unique_columns = {
            key.columns[0]
            for key in (*table.uniques, *(i for i in table.indexes if i.name in table.unique_indexes))
            if len(key.columns) == 1
        }
        lines.append(f"    {table.name} {{")
        for column in table.columns:
            marks = [
                mark
                for mark, present in (
                    ("PK", column.name in table.primary_key.columns),
                    ("FK", column.name in fk_columns),
                    ("UK", column.name in unique_columns),
                )
                if present
            ]
            lines.append(f"        {_mermaid_type(column.type)} {column.name}{' ' + ','.join(marks) if marks else ''}")
        lines.append("    }")
    return [*lines, "```", ""]


def _cascade(tables: list[TableInfo], root: str, depth: int = 0, seen: tuple[str, ...] = ()) -> list[str]:
    lines = []
    for table in tables:
        for fk in table.foreign_keys:
            if fk.target != root or table.name in seen:
                continue
            indent = "  " * depth
            if fk.ondelete == "CASCADE":
                lines.append(f"{indent}- deletes its `{table.name}` rows (`{fk.name}`, CASCADE)")
                lines += _cascade(tables, table.name, depth + 1, (*seen, root))
            elif fk.ondelete == "SET NULL":
                lines.append(f"{indent}- keeps its `{table.name}` rows, setting `{', '.join(fk.columns)}` to NULL")
            else:
                lines.append(f"{indent}- is refused while `{table.name}` rows refer to it (`{fk.name}`, {fk.ondelete})")
    return lines


def render_delete_paths(tables: list[TableInfo]) -> list[str]:
    lines = ["## What a delete removes", ""]
    for root, storage in DELETE_ROOTS.items():
        lines += [f"### Deleting a row of `{root}`", "", "In the database, one `DELETE` statement:", ""]
        lines += _cascade(tables, root) or ["- removes only the row"]
        lines += ["", f"In S3: {storage}", ""]
    return lines


def render_reference(tables: list[TableInfo]) -> str:
    """Everything derived from the schema: the part a migrated database must reproduce exactly."""
    lines = ["## Entity-relationship diagram", "", *render_diagram(tables), "## Tables", ""]
    for table in tables:
        lines += render_table(table)
    lines += render_delete_paths(tables)
    return "\n".join(lines)


HEADER = f"""# Database schema

Generated by `{COMMAND}` from the SQLAlchemy models (`pixcrawler.models`); do not edit by hand. Change a
model (its docstring, a column's `doc=`, an index's `info={{"serves": ...}}`), add a migration, then run the
command; `tests/test_schema_docs.py` fails while this file, the models or `alembic upgrade head` disagree.
Why the schema is shaped this way: [SCHEMA_DECISIONS.md](SCHEMA_DECISIONS.md). How to change it:
[MIGRATION_GUIDE.md](MIGRATION_GUIDE.md).

Every table's timestamps are `TIMESTAMP WITH TIME ZONE`; "ORM default" is what SQLAlchemy sets when the code
leaves a column unset, "server default" what PostgreSQL sets for any other writer.

"""


def measured_section(document: str) -> str:
    """The measured text currently kept in `document` (the placeholder when there is none)."""
    if MEASURED_START in document and MEASURED_END in document:
        return document.split(MEASURED_START, 1)[1].split(MEASURED_END, 1)[0].strip("\n") + "\n"
    return NOT_MEASURED


def render_document(metadata: MetaData, measured: str) -> str:
    return (
        HEADER
        + render_reference(describe_models(metadata))
        + "\n## Measured: every statement the product issues, at volume\n\n"
        + "Written by `python benchmarks/queries.py --write` (see that script for the method).\n\n"
        + f"{MEASURED_START}\n{measured.rstrip()}\n{MEASURED_END}\n"
    )


def _metadata() -> MetaData:
    from pixcrawler.models import Base

    return Base.metadata


def generate(path: Path = DOCUMENT, metadata: MetaData | None = None) -> str:
    current = path.read_text() if path.is_file() else ""
    return render_document(metadata or _metadata(), measured_section(current))


def write_measured(measured: str, path: Path = DOCUMENT) -> None:
    """Replace the measured section (used by benchmarks/queries.py --write) and regenerate the rest."""
    path.write_text(render_document(_metadata(), measured))


def differences(expected: str, actual: str, expected_name: str, actual_name: str) -> str:
    return "".join(
        difflib.unified_diff(
            actual.splitlines(keepends=True), expected.splitlines(keepends=True), actual_name, expected_name
        )
    )


def database_differences(engine: Engine, metadata: MetaData | None = None) -> str:
    """A diff between the document's reference part rendered from the models and from the database; empty
    when the database has exactly the tables, columns, keys, indexes and constraints the document describes."""
    metadata = metadata or _metadata()
    with engine.connect() as connection:
        live = render_reference(describe_database(inspect(connection), metadata))
    return differences(render_reference(describe_models(metadata)), live, "models", "database")


def check(path: Path = DOCUMENT) -> str:
    """An empty string when the committed document is current, else the diff that regenerating would apply."""
    current = path.read_text() if path.is_file() else ""
    return differences(generate(path), current, f"{path.name} (generated)", f"{path.name} (committed)")


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 with a diff if the document is out of date")
    args = parser.parse_args(argv)
    if args.check:
        diff = check()
        if diff:
            out(diff)
            out(f"{DOCUMENT.relative_to(ROOT)} is out of date: run `{COMMAND}` and commit the result.")
            return 1
        out(f"{DOCUMENT.relative_to(ROOT)} is current.")
        return 0
    DOCUMENT.write_text(generate())
    out(f"wrote {DOCUMENT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
