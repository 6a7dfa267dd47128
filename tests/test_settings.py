"""Settings are declared once (pixcrawler/settings.py) and everything that names them agrees with that
declaration: the README's variable tables, the environment template.yaml passes, the layer's requirements."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from pydantic import TypeAdapter

from pixcrawler.settings import Settings, SettingsError, get_settings
from tests.conftest import ROOT

VARIABLE = re.compile(r"`([A-Z][A-Z0-9_]+)`")
DECLARED = {name.upper(): field for name, field in Settings.model_fields.items()}


def _variable_rows() -> Iterator[tuple[list[str], str]]:
    """(variables, default cell) of every row of every README table whose header starts with `variable`."""
    header: list[str] | None = None
    for line in (ROOT / "README.md").read_text().splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if header is None:
            header = cells
        elif header[0] == "variable" and not set(cells[0]) <= {"-", " "}:
            assert header[:2] == ["variable", "default"], f"README table {header} lists no defaults"
            yield VARIABLE.findall(cells[0]), cells[1]


def _readme_default(cell: str) -> str:
    """`none` documents an empty default; otherwise the default is the cell's first code span."""
    if cell == "none":
        return ""
    spans = re.findall(r"`([^`]*)`", cell)
    assert spans, f"default {cell!r} is neither `none` nor a `value`"
    return spans[0]


@pytest.fixture
def clean_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("DOWNLOAD_CONCURRENCY", "abc", "valid integer"),
        ("DOWNLOAD_CONCURRENCY", "0", "greater than or equal to 1"),
        ("EXPORT_PART_SIZE_MB", "4", "greater than or equal to 5"),
        ("MAX_RECEIVE_COUNT", "1001", "less than or equal to 1000"),
        ("DOWNLOAD_TOTAL_TIMEOUT", "-1", "greater than 0"),
        ("CRAWL_ALLOW_LOOPBACK", "perhaps", "valid boolean"),
    ],
)
def test_a_refused_value_names_its_variable(
    clean_settings: pytest.MonkeyPatch, variable: str, value: str, reason: str
) -> None:
    clean_settings.setenv(variable, value)
    with pytest.raises(SettingsError) as refused:
        get_settings()
    assert f"{variable}: " in str(refused.value) and reason in str(refused.value)


def test_a_refused_value_inside_a_json_setting_names_where(clean_settings: pytest.MonkeyPatch) -> None:
    clean_settings.setenv("CRAWL_HOST_OVERRIDES", '{"127.0.0.1": {"rate": 2, "min_interval_ms": 0}, "b.test": 3}')
    with pytest.raises(SettingsError) as refused:
        get_settings()
    assert str(refused.value) == (
        'invalid configuration: CRAWL_HOST_OVERRIDES["127.0.0.1"]["min_interval_ms"]: Extra inputs are not '
        'permitted; CRAWL_HOST_OVERRIDES["b.test"]: Input should be a valid dictionary or instance of HostLimits'
    )


def test_the_cli_answers_a_refused_value_in_one_sentence() -> None:
    crawl = [str(Path(sys.executable).parent / "pixcrawler"), "crawl", "cats", "--url", "https://images.example/a.jpg"]
    refused = subprocess.run(
        crawl, env=os.environ | {"CRAWL_ALLOW_LOOPBACK": "perhaps"}, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith("pixcrawler crawl: invalid configuration: CRAWL_ALLOW_LOOPBACK: "), refused.stderr


def test_importing_reads_nothing_and_secrets_are_fetched_only_when_used(clean_settings: pytest.MonkeyPatch) -> None:
    """Modules import without configuration (OpenAPIMerge imports every handler); reading settings names the
    secrets but asks Secrets Manager nothing (its endpoint here is a closed port)."""
    bad = os.environ | {"DOWNLOAD_CONCURRENCY": "abc"}
    subprocess.run(
        [sys.executable, "-c", "import pixcrawler.settings, pixcrawler.db, pixcrawler.links"], env=bad, check=True
    )
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db"
    clean_settings.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    clean_settings.setenv("DB_SECRET_ARN", arn)
    clean_settings.setenv("DOWNLOAD_LINK_SECRET_ARN", arn)
    assert (get_settings().db_secret_arn, get_settings().download_link_secret_arn) == (arn, arn)


def test_unset_and_empty_variables_take_the_declared_default(clean_settings: pytest.MonkeyPatch) -> None:
    clean_settings.delenv("DOWNLOAD_CONCURRENCY", raising=False)
    clean_settings.setenv("DB_POOL_SIZE", "")
    clean_settings.setenv("OPENVERSE_URL", "https://openverse.example/")
    settings = get_settings()
    assert (settings.download_concurrency, settings.db_pool_size) == (16, 1)
    assert settings.openverse_url == "https://openverse.example"


def test_every_readme_default_is_the_declared_one() -> None:
    rows = list(_variable_rows())
    assert len(rows) >= 4
    for variables, cell in rows:
        assert variables, f"README variable row without a variable name (default {cell!r})"
        for variable in variables:
            assert variable in DECLARED, f"README documents {variable}, which no setting declares"
            field = DECLARED[variable]
            value, adapter = _readme_default(cell), TypeAdapter(field.annotation)
            # a map or list setting is JSON in its variable, as in the README's cell
            documented = (
                adapter.validate_json(value) if value.startswith(("{", "[")) else adapter.validate_python(value)
            )
            default = field.get_default(call_default_factory=True)
            assert documented == default, f"README says {variable} defaults to {cell}, settings {default!r}"


def test_every_setting_is_documented_in_a_readme_table() -> None:
    documented = {variable for variables, _ in _variable_rows() for variable in variables}
    assert set(DECLARED) - documented == set()


def test_every_setting_has_a_description() -> None:
    assert [name for name, field in DECLARED.items() if not field.description] == []


def _requirements(lines: list[str]) -> dict[str, Requirement]:
    parsed = [Requirement(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return {requirement.name: requirement for requirement in parsed}


LOCAL_STACK_ONLY = {"moto", "pgserver", "werkzeug", "aiohttp", "pyjwt", "tqdm"}
"""pyproject installs the local stack's dependencies too (`pip install -e .`); no deployed function imports them."""
LAMBDA_RUNTIME = {"boto3"}
"""The Lambda runtime ships boto3 (and botocore, which layers/common/Makefile drops from the layer)."""


def test_the_layer_requires_exactly_the_deployed_dependencies_of_pyproject() -> None:
    """pyproject.toml is the source; the layer's requirements.txt is it minus the local stack and the runtime's
    own boto3, with the same extras and version bounds."""
    project: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _requirements(project["dependencies"])
    layer = _requirements((ROOT / "layers" / "common" / "requirements.txt").read_text().splitlines())
    outside_the_layer = LOCAL_STACK_ONLY | LAMBDA_RUNTIME
    assert set(declared) >= outside_the_layer
    expected = {name: str(r) for name, r in declared.items() if name not in outside_the_layer}
    assert {name: str(r) for name, r in layer.items()} == expected
