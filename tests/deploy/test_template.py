"""template.yaml: lint-clean as written and as SAM translates it, and the deployment rules hold in the output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode
from samtranslator.translator.transform import transform

from pixcrawler.settings import Settings
from tests.conftest import ROOT

TEMPLATE = ROOT / "template.yaml"
PUBLIC_ROUTES = {
    "GET /v1/health",
    "GET /v1/docs",
    "GET /v1/openapi.json",
    "GET /v1/app",
    "GET /v1/downloads/{token}",
}
POWERTOOLS_VARIABLES = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL", "POWERTOOLS_METRICS_NAMESPACE"}
SETTINGS_VARIABLES = {name.upper() for name in Settings.model_fields} | POWERTOOLS_VARIABLES
"""What the code reads: a variable the template passes that no setting declares would be silently ignored."""


def cli_env() -> dict[str, str]:
    return os.environ | {"AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}


def cli(name: str) -> str:
    return str(Path(sys.executable).parent / name)


class _NoManagedPolicies:
    """The translator resolves managed policy names through IAM; this template names none."""

    def load(self) -> dict[str, str]:
        return {}


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    """The CloudFormation SAM would deploy; local code locations stand in as S3 URIs, as after `sam package`."""
    template, errors = decode(str(TEMPLATE))
    assert template is not None, errors
    for name, resource in template["Resources"].items():
        for key in ("CodeUri", "ContentUri"):
            if key in resource.get("Properties", {}):
                resource["Properties"][key] = f"s3://artifacts/{name}.zip"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # pseudo parameters need a region
        return transform(template, {}, _NoManagedPolicies())


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def test_cfn_lint_is_clean() -> None:
    result = subprocess.run([cli("cfn-lint"), str(TEMPLATE)], capture_output=True, text=True, env=cli_env())
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint_passes() -> None:
    result = subprocess.run(
        [cli("sam"), "validate", "--lint", "--template-file", str(TEMPLATE)],
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_translated_template_is_lint_clean(translated: dict[str, Any], tmp_path: Path) -> None:
    """Linting SAM's output catches what both linters let through in the source, e.g. `ReportBatchItemFailure`."""
    output = tmp_path / "translated.json"
    output.write_text(json.dumps(translated, default=str))
    result = subprocess.run([cli("cfn-lint"), str(output)], capture_output=True, text=True, env=cli_env())
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_queue_event_reports_partial_failures_with_bounded_concurrency(translated: dict[str, Any]) -> None:
    mappings = resources(translated, "AWS::Lambda::EventSourceMapping")
    functions = resources(translated, "AWS::Lambda::Function")
    queues = resources(translated, "AWS::SQS::Queue")
    assert len(mappings) == 4
    for mapping in mappings.values():
        properties = mapping["Properties"]
        assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert "MaximumConcurrency" in properties["ScalingConfig"]
        queue = queues[properties["EventSourceArn"]["Fn::GetAtt"][0]]["Properties"]
        alias = translated["Resources"][properties["FunctionName"]["Ref"]]
        function = functions[alias["Properties"]["FunctionName"]["Ref"]]["Properties"]
        assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
        dead_letter = queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert "RedrivePolicy" not in queues[dead_letter]["Properties"]
        assert queue["RedrivePolicy"]["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}


def test_only_the_public_routes_skip_the_jwt_authorizer(translated: dict[str, Any]) -> None:
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"] for r in resources(translated, "AWS::ApiGatewayV2::Route").values()
    }
    assert {key for key, route in routes.items() if route["AuthorizationType"] == "NONE"} == PUBLIC_ROUTES
    assert routes["ANY /v1/{proxy+}"]["AuthorizationType"] == "JWT"
    [authorizer] = resources(translated, "AWS::ApiGatewayV2::Authorizer").values()
    assert authorizer["Properties"]["JwtConfiguration"] == {
        "Issuer": {"Ref": "JwtIssuer"},
        "Audience": {"Ref": "JwtAudience"},
    }


def test_functions_that_take_traffic_wait_for_the_migration(translated: dict[str, Any]) -> None:
    functions = resources(translated, "AWS::Lambda::Function")
    assert set(functions) >= {
        "ApiFunction",
        "DispatchFunction",
        "CrawlFunction",
        "ValidationFunction",
        "ExportFunction",
    }
    for name, function in functions.items():
        if name != "MigrateFunction":
            assert function["DependsOn"] == "SchemaMigration", name
    migration = translated["Resources"]["SchemaMigration"]["Properties"]
    version = resources(translated, "AWS::Lambda::Version")[migration["MigrationsVersion"]["Ref"]]
    assert version["Properties"]["FunctionName"] == {"Ref": "MigrateFunction"}
    assert translated["Resources"][migration["ServiceToken"]["Ref"]]["Type"] == "AWS::Lambda::Alias"


def test_every_function_runs_from_a_snapstart_snapshot_behind_its_alias(translated: dict[str, Any]) -> None:
    """SnapStart applies to published versions only: every caller (queues, the schedule, the gateway and its
    permission, the migration hook) must invoke the alias, never $LATEST."""
    functions = resources(translated, "AWS::Lambda::Function")
    aliases = {
        alias["Properties"]["FunctionName"]["Ref"]: name
        for name, alias in resources(translated, "AWS::Lambda::Alias").items()
    }
    assert set(aliases) == set(functions)
    for function in functions.values():
        assert function["Properties"]["SnapStart"] == {"ApplyOn": {"Ref": "SnapStartApplyOn"}}
    assert translated["Parameters"]["SnapStartApplyOn"]["Default"] == "PublishedVersions"
    callers = [
        mapping["Properties"]["FunctionName"]
        for mapping in resources(translated, "AWS::Lambda::EventSourceMapping").values()
    ]
    callers += [
        target["Arn"]
        for rule in resources(translated, "AWS::Events::Rule").values()
        for target in rule["Properties"]["Targets"]
    ]
    callers += [
        permission["Properties"]["FunctionName"]
        for permission in resources(translated, "AWS::Lambda::Permission").values()
    ]
    callers.append(translated["Resources"]["ApiIntegration"]["Properties"]["IntegrationUri"])
    callers.append(translated["Resources"]["SchemaMigration"]["Properties"]["ServiceToken"])
    assert len(callers) == 9
    assert all(caller["Ref"] in aliases.values() for caller in callers), callers


def test_functions_share_the_layer_and_read_only_known_settings(translated: dict[str, Any]) -> None:
    [layer] = resources(translated, "AWS::Lambda::LayerVersion")
    for name, function in resources(translated, "AWS::Lambda::Function").items():
        properties = function["Properties"]
        assert properties["Handler"] == "app.lambda_handler", name
        assert properties["Runtime"] == "python3.12", name
        assert properties["Layers"] == [
            {"Ref": layer},
            {"Fn::If": ["HasSecretsExtension", {"Ref": "SecretsExtensionLayerArn"}, {"Ref": "AWS::NoValue"}]},
        ], name
        assert properties["Environment"]["Variables"]["PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"] == {
            "Fn::If": ["HasSecretsExtension", "2773", ""]
        }, name
        assert properties["TracingConfig"] == {"Mode": "Active"}, name
        assert set(properties["Environment"]["Variables"]) <= SETTINGS_VARIABLES, name


def test_inline_policies_name_exact_resources(translated: dict[str, Any]) -> None:
    """Least privilege: every statement we wrote or SAM expanded is scoped to a queue, prefix or secret."""
    for name, role in resources(translated, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                assert "*" not in targets, (name, statement)
                for target in targets:
                    if "Fn::Sub" in target and "DataBucket" in json.dumps(target):
                        assert "/projects/*" in json.dumps(target) or "/exports/*" in json.dumps(target), target


@pytest.mark.parametrize("role", ["ApiFunctionRole", "ExportFunctionRole"])
def test_roles_that_clean_export_prefixes_may_list_and_abort_their_uploads(
    translated: dict[str, Any], role: str
) -> None:
    """Completing, failing or cancelling an export (export function) and deleting a project (API) list the
    prefix's objects and unfinished multipart uploads, delete and abort them; moto never checks IAM."""
    allowed: set[str] = set()
    for policy in translated["Resources"][role]["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            allowed.update(actions)
    assert {"s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:DeleteObject", "s3:AbortMultipartUpload"} <= allowed


def test_data_bucket_is_private_encrypted_tls_only_and_expires_exports(translated: dict[str, Any]) -> None:
    bucket = translated["Resources"]["DataBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    rules = {rule["Id"]: rule for rule in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-exports"]["Prefix"] == "exports/"
    assert rules["abort-incomplete-multipart-uploads"]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1
    [statement] = translated["Resources"]["DataBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert (statement["Effect"], statement["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})


def test_every_function_may_send_to_the_queues_it_is_given(translated: dict[str, Any]) -> None:
    """A function handed a queue's URL sends to it (a crawl chunk re-queues itself when its host is busy, an
    export continues itself): its role must allow `sqs:SendMessage` there. moto never checks IAM."""
    for name, function in resources(translated, "AWS::Lambda::Function").items():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        queues = [value["Ref"] for key, value in variables.items() if key.endswith("_QUEUE_URL")]
        role = function["Properties"]["Role"]["Fn::GetAtt"][0]
        statements = [
            json.dumps(statement)
            for policy in translated["Resources"][role]["Properties"].get("Policies", [])
            for statement in policy["PolicyDocument"]["Statement"]
        ]
        for queue in queues:
            assert any("sqs:SendMessage" in text and f'"{queue}"' in text for text in statements), (name, queue)


def test_the_api_can_be_bounded_like_the_workers(translated: dict[str, Any]) -> None:
    """Every environment holds a database connection: with ApiMaxConcurrency set, the API's are bounded as the
    workers' are by their event sources' MaximumConcurrency (see README, Scaling and cost)."""
    api = translated["Resources"]["ApiFunction"]["Properties"]
    assert api["ReservedConcurrentExecutions"] == {
        "Fn::If": ["LimitsApi", {"Ref": "ApiMaxConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    assert translated["Conditions"]["LimitsApi"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ApiMaxConcurrency"}, 0]}]}
