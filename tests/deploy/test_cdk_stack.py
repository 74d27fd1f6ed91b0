"""The AWS CDK stack, synthesised offline once per session and checked resource by resource."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from videoforge.settings import Settings

REPO = Path(__file__).resolve().parents[2]
STACK_FILE = REPO / "deploy" / "aws" / "videoforge_stack.py"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/videoforge:1.2.3"

# Environment variables a deployment may set that are not VideoForge settings.
RUNTIME_VARS = {
    "FORWARDED_ALLOW_IPS",
    "DB_SECRET_ARN",
    "JWT_SECRET_ARN",
    "LIFECYCLE_HOOK_NAME",
    # Read by the OpenTelemetry SDK itself (infra/tracing.py), not by Settings.
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_SERVICE_NAME",
}
# Settings the ops work asked for that may not be in Settings yet (see the ops report).
PENDING_SETTINGS = {"METRICS_PORT"}


def _load_stack_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("videoforge_stack", STACK_FILE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["videoforge_stack"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def stack_module() -> ModuleType:
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")
    return _load_stack_module()


def _cdn_public_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


CDN_PUBLIC_KEY = _cdn_public_key()


@pytest.fixture(scope="session")
def template(stack_module: ModuleType) -> Any:
    """The synthesised template (synthesis starts jsii's Node process: ~10-30 s, once)."""
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    app = cdk.App()
    stack = stack_module.VideoForgeStack(
        app,
        "VideoForge",
        config=stack_module.VideoForgeConfig(
            image=IMAGE, worker_package="videoforge==1.2.3", cdn_public_key_pem=CDN_PUBLIC_KEY
        ),
    )
    return Template.from_stack(stack)


@pytest.fixture(scope="session")
def resources(template: Any) -> dict[str, Any]:
    return dict(template.to_json()["Resources"])


def _of_type(resources: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in resources.items() if v["Type"] == kind}


def _one(resources: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    found = _of_type(resources, kind)
    assert len(found) == 1, f"expected one {kind}, found {sorted(found)}"
    return next(iter(found.items()))


def _app_containers(task: dict[str, Any]) -> list[dict[str, Any]]:
    """A task's VideoForge containers (not its collector sidecar)."""
    return [c for c in task["ContainerDefinitions"] if "aws-otel-collector" not in c["Image"]]


def _flatten(value: Any) -> str:
    """A CloudFormation value as text; intrinsic functions become <token>."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            return str(sep).join(_flatten(p) for p in parts)
        if "Fn::Base64" in value:
            return _flatten(value["Fn::Base64"])
        return "<token>"
    if isinstance(value, list):
        return ",".join(_flatten(v) for v in value)
    return str(value)


def _logical_id(resources: dict[str, Any], kind: str, prefix: str) -> str:
    (found,) = [k for k, v in resources.items() if v["Type"] == kind and k.startswith(prefix)]
    return found


def _role_statements(resources: dict[str, Any], role_prefix: str) -> list[dict[str, Any]]:
    role = _logical_id(resources, "AWS::IAM::Role", role_prefix)
    statements: list[dict[str, Any]] = []
    for props in _of_type(resources, "AWS::IAM::Policy").values():
        if {"Ref": role} in props["Roles"]:
            statements.extend(props["PolicyDocument"]["Statement"])
    assert statements, f"no policy attached to {role}"
    return statements


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ------------------------------------------------------------------ network, ALB
def test_vpc_spans_two_azs_with_public_and_private_subnets(resources: dict[str, Any]) -> None:
    subnets = _of_type(resources, "AWS::EC2::Subnet")
    public = [p for p in subnets.values() if p.get("MapPublicIpOnLaunch") is True]
    private = [p for p in subnets.values() if not p.get("MapPublicIpOnLaunch")]
    assert len(public) == 2
    assert len(private) == 2
    azs = {json.dumps(p["AvailabilityZone"]) for p in subnets.values()}
    assert len(azs) == 2


def test_one_alb_routes_gallery_paths_and_defaults_to_gateway(resources: dict[str, Any]) -> None:
    _, alb = _one(resources, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert alb["Scheme"] == "internet-facing"
    groups = _of_type(resources, "AWS::ElasticLoadBalancingV2::TargetGroup")
    by_port = {props["Port"]: logical for logical, props in groups.items()}
    assert set(by_port) == {3000, 5000}
    for props in groups.values():
        assert props["HealthCheckPath"] == "/health"
        assert props["TargetType"] == "ip"

    _, listener = _one(resources, "AWS::ElasticLoadBalancingV2::Listener")
    (default,) = listener["DefaultActions"]
    assert default == {"Type": "forward", "TargetGroupArn": {"Ref": by_port[3000]}}

    rules = _of_type(resources, "AWS::ElasticLoadBalancingV2::ListenerRule").values()
    forward_rules = [r for r in rules if r["Actions"][0]["Type"] == "forward"]
    (gallery_rule,) = forward_rules
    (condition,) = gallery_rule["Conditions"]
    assert condition["Field"] == "path-pattern"
    assert sorted(condition["PathPatternConfig"]["Values"]) == [
        "/api/gallery/*",
        "/api/upload/*",
        "/api/webhooks",
        "/api/webhooks/*",
    ]
    assert gallery_rule["Actions"][0]["TargetGroupArn"] == {"Ref": by_port[5000]}
    # /metrics is answered by the ALB itself, never forwarded to the internet.
    (hidden,) = [r for r in rules if r["Actions"][0]["Type"] == "fixed-response"]
    assert hidden["Conditions"][0]["PathPatternConfig"]["Values"] == ["/metrics"]
    assert hidden["Priority"] < gallery_rule["Priority"]


def test_services_on_fargate_scale_on_cpu_and_requests(resources: dict[str, Any]) -> None:
    services = _of_type(resources, "AWS::ECS::Service")
    assert len(services) == 2
    for props in services.values():
        assert props["LaunchType"] == "FARGATE"
        net = props["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert net["AssignPublicIp"] == "DISABLED"

    targets = _of_type(resources, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert len(targets) == 2
    for props in targets.values():
        assert (props["MinCapacity"], props["MaxCapacity"]) == (2, 10)

    policies = _of_type(resources, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    kinds: dict[str, list[str]] = {}
    for props in policies:
        metric = props["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]
        kinds.setdefault(props["ScalingTargetId"]["Ref"], []).append(metric["PredefinedMetricType"])
    assert set(kinds) == set(targets)
    for found in kinds.values():
        assert sorted(found) == ["ALBRequestCountPerTarget", "ECSServiceAverageCPUUtilization"]


def test_task_definitions_use_seed_names_and_secrets(resources: dict[str, Any]) -> None:
    aliases = {f.alias for f in Settings.model_fields.values() if f.alias}
    commands: set[str] = set()
    for props in _of_type(resources, "AWS::ECS::TaskDefinition").values():
        for container in _app_containers(props):
            assert container["Image"] == IMAGE
            commands.update(container["Command"])
            names = {e["Name"] for e in container.get("Environment", [])}
            secrets = {s["Name"] for s in container.get("Secrets", [])}
            assert names - aliases - RUNTIME_VARS == set(), names - aliases
            assert {"DB_HOST", "S3_BUCKET_NAME", "SQS_QUEUE_URL", "REDIS_URL"} <= names
            assert {"COGNITO_USER_POOL_ID", "COGNITO_CLIENT_ID"} <= names
            cdn = {"CLOUDFRONT_PRIVATE_KEY"} if "gallery" in container["Command"] else set()
            # The HTTP services answer /metrics only with METRICS_TOKEN: without one a
            # scraper in the VPC would get 404s.
            serving = set(container["Command"]) & {"gateway", "gallery"}
            metrics = {"METRICS_TOKEN"} if serving else set()
            assert secrets == {"DB_USER", "DB_PASSWORD", "JWT_SECRET"} | cdn | metrics
            env = {e["Name"]: e["Value"] for e in container.get("Environment", [])}
            assert env["VIDEOFORGE_ENV"] == "production"
            if serving:
                # One process per vCPU of the task: Fargate's os.cpu_count is the host's.
                assert int(env["WEB_CONCURRENCY"]) == max(1, int(props["Cpu"]) // 1024)
    assert commands == {"gateway", "gallery", "migrate", "sweep"}


# ------------------------------------------------------------------------ workers
def test_worker_group_scales_zero_to_ten_on_backlog_per_instance(
    resources: dict[str, Any],
) -> None:
    asg_id, asg = _one(resources, "AWS::AutoScaling::AutoScalingGroup")
    assert (asg["MinSize"], asg["MaxSize"]) == ("0", "10")
    assert "LaunchTemplate" in asg

    policies = _of_type(resources, "AWS::AutoScaling::ScalingPolicy")
    (tracking,) = [p for p in policies.values() if p["PolicyType"] == "TargetTrackingScaling"]
    config = tracking["TargetTrackingConfiguration"]
    assert config["TargetValue"] == 5
    metrics = config["CustomizedMetricSpecification"]["Metrics"]
    by_id = {m["Id"]: m for m in metrics}
    visible = by_id["visible"]["MetricStat"]["Metric"]
    assert visible["Namespace"] == "AWS/SQS"
    assert visible["MetricName"] == "ApproximateNumberOfMessagesVisible"
    jobs_queue = _logical_id(resources, "AWS::SQS::Queue", "JobsQueue")
    assert visible["Dimensions"][0]["Value"] == {"Fn::GetAtt": [jobs_queue, "QueueName"]}
    instances = by_id["instances"]["MetricStat"]["Metric"]
    assert instances["MetricName"] == "GroupInServiceInstances"
    assert instances["Dimensions"][0]["Value"] == {"Ref": asg_id}
    (returned,) = [m for m in metrics if m.get("ReturnData")]
    assert "visible / instances" in returned["Expression"]
    assert asg["MetricsCollection"], "GroupInServiceInstances needs group metrics"

    # Leaving zero: a step policy driven by an alarm on "jobs waiting, nobody working".
    (step,) = [p for p in policies.values() if p["PolicyType"] == "StepScaling"]
    assert step["StepAdjustments"] == [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]
    step_id = next(k for k, v in policies.items() if v is step)
    alarms = _of_type(resources, "AWS::CloudWatch::Alarm").values()
    assert any({"Ref": step_id} in a.get("AlarmActions", []) for a in alarms)


def test_worker_user_data_installs_ffmpeg_and_runs_the_unit(
    resources: dict[str, Any], stack_module: ModuleType
) -> None:
    _, lt = _one(resources, "AWS::EC2::LaunchTemplate")
    data = lt["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    script = _flatten(data["UserData"])
    assert script.startswith("#!/bin/bash")
    assert re.search(r"apt-get install .*\bffmpeg\b", script)
    assert "pip install -q 'videoforge==1.2.3'" in script
    unit = (REPO / "deploy" / "systemd" / "videoforge-worker.service").read_text()
    assert unit in script
    assert "ExecStart=/opt/videoforge/venv/bin/videoforge worker" in unit
    assert "systemctl enable --now videoforge-worker.service" in script
    env = dict(
        line.split("=", 1)
        for line in script.split("/etc/videoforge/worker.env <<'VIDEOFORGE_EOF'\n")[1]
        .split("\nVIDEOFORGE_EOF")[0]
        .splitlines()
    )
    aliases = {f.alias for f in Settings.model_fields.values() if f.alias}
    assert set(env) - aliases - RUNTIME_VARS - PENDING_SETTINGS == set()
    assert env["VIDEOFORGE_ENV"] == "production"
    assert env["LIFECYCLE_HOOK_NAME"] == stack_module.LIFECYCLE_HOOK_NAME
    # Scraped from the VPC (the workers' security group allows it), not only on the host.
    assert (env["METRICS_PORT"], env["METRICS_HOST"]) == ("9100", "0.0.0.0")


def test_graceful_scale_in_timeouts_nest(
    resources: dict[str, Any], stack_module: ModuleType
) -> None:
    _, hook = _one(resources, "AWS::AutoScaling::LifecycleHook")
    assert hook["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    assert hook["LifecycleHookName"] == stack_module.LIFECYCLE_HOOK_NAME
    assert hook["DefaultResult"] == "CONTINUE"
    unit = stack_module.read_unit("videoforge-worker.service")
    stop = stack_module.unit_timeout_stop_sec(unit)
    assert "KillSignal=SIGTERM" in unit
    # The worker's grace < systemd's stop timeout < the hook's hold on the instance.
    assert stack_module.WORKER_SHUTDOWN_GRACE_SECONDS < stop < hook["HeartbeatTimeout"]


def test_operators_are_paged_on_unhealthy_targets_and_5xx(resources: dict[str, Any]) -> None:
    topic, _ = _one(resources, "AWS::SNS::Topic")
    alarms = _of_type(resources, "AWS::CloudWatch::Alarm").values()
    paged = [a for a in alarms if {"Ref": topic} in a.get("AlarmActions", [])]
    names = sorted(a["MetricName"] for a in paged if "MetricName" in a)
    assert names.count("UnHealthyHostCount") == 2
    assert names.count("HTTPCode_Target_5XX_Count") == 2
    assert names.count("ApproximateNumberOfMessagesVisible") == 2  # the two DLQs


# ------------------------------------------------------------------------- data
def test_queues_have_dead_letter_queues_and_alarms(resources: dict[str, Any]) -> None:
    queues = _of_type(resources, "AWS::SQS::Queue")
    assert len(queues) == 4
    mains = {k: v for k, v in queues.items() if "RedrivePolicy" in v}
    assert sorted(k.split("Queue")[0] for k in mains) == ["Events", "Jobs"]
    alarms = _of_type(resources, "AWS::CloudWatch::Alarm").values()
    for props in mains.values():
        redrive = props["RedrivePolicy"]
        assert redrive["maxReceiveCount"] == 5
        dlq = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert dlq in queues
        assert "RedrivePolicy" not in queues[dlq]
        (alarm,) = [
            a
            for a in alarms
            if a.get("Dimensions")
            and a["Dimensions"][0]["Value"] == {"Fn::GetAtt": [dlq, "QueueName"]}
        ]
        assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert alarm["Threshold"] == 0
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["AlarmActions"]


def test_bucket_private_versioned_encrypted_with_cors_and_lifecycle(
    resources: dict[str, Any],
) -> None:
    _, bucket = _one(resources, "AWS::S3::Bucket")
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    rules = bucket["LifecycleConfiguration"]["Rules"]
    aborts = [r for r in rules if "AbortIncompleteMultipartUpload" in r]
    assert aborts
    assert aborts[0]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] >= 1
    assert aborts[0]["Status"] == "Enabled"
    (cors,) = bucket["CorsConfiguration"]["CorsRules"]
    assert {"PUT", "POST", "GET"} <= set(cors["AllowedMethods"])
    assert cors["ExposedHeaders"] == ["ETag"]
    assert cors["AllowedOrigins"]
    assert "*" not in cors["AllowedOrigins"]
    # TLS only.
    _, policy = _one(resources, "AWS::S3::BucketPolicy")
    assert any(
        st["Effect"] == "Deny" and st["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for st in policy["PolicyDocument"]["Statement"]
    )


def test_postgres_with_generated_secret_in_private_subnets(resources: dict[str, Any]) -> None:
    _, db = _one(resources, "AWS::RDS::DBInstance")
    assert db["Engine"] == "postgres"
    assert db["PubliclyAccessible"] is False
    assert db["StorageEncrypted"] is True
    assert db["BackupRetentionPeriod"] >= 7
    secret_ref = _flatten(db["MasterUserPassword"])
    assert secret_ref.startswith("{{resolve:secretsmanager:")
    secrets = _of_type(resources, "AWS::SecretsManager::Secret")
    db_secret = db["MasterUserPassword"]["Fn::Join"][1][1]["Ref"]
    assert db_secret in secrets
    assert "GenerateSecretString" in secrets[db_secret]
    _, subnet_group = _one(resources, "AWS::RDS::DBSubnetGroup")
    subnet_ids = [s["Ref"] for s in subnet_group["SubnetIds"]]
    assert all("private" in s for s in subnet_ids)


def test_redis_replication_group_is_encrypted(resources: dict[str, Any]) -> None:
    _, redis = _one(resources, "AWS::ElastiCache::ReplicationGroup")
    assert redis["Engine"] == "redis"
    assert redis["TransitEncryptionEnabled"] is True
    assert redis["AtRestEncryptionEnabled"] is True


def test_cognito_pool_client_and_admin_group(resources: dict[str, Any]) -> None:
    pool_id, _ = _one(resources, "AWS::Cognito::UserPool")
    _, client = _one(resources, "AWS::Cognito::UserPoolClient")
    assert client["UserPoolId"] == {"Ref": pool_id}
    assert set(client["ExplicitAuthFlows"]) == {
        "ALLOW_USER_PASSWORD_AUTH",
        "ALLOW_REFRESH_TOKEN_AUTH",
    }
    assert client["GenerateSecret"] is False
    _, group = _one(resources, "AWS::Cognito::UserPoolGroup")
    assert group["GroupName"] == "admin"
    assert group["UserPoolId"] == {"Ref": pool_id}


# -------------------------------------------------------------------------- IAM
def _deletes_on(statements: list[dict[str, Any]], resource_re: str) -> bool:
    for st in statements:
        if st["Effect"] != "Allow":
            continue
        actions = _as_list(st["Action"])
        deletes = any(re.fullmatch(a.replace("*", ".*"), "s3:DeleteObject") for a in actions)
        if deletes and any(re.search(resource_re, _flatten(r)) for r in _as_list(st["Resource"])):
            return True
    return False


def _grants(statements: list[dict[str, Any]], action: str, resource_re: str) -> bool:
    for st in statements:
        if st["Effect"] != "Allow":
            continue
        if not any(re.fullmatch(a.replace("*", ".*"), action) for a in _as_list(st["Action"])):
            continue
        if any(re.search(resource_re, _flatten(r)) for r in _as_list(st["Resource"])):
            return True
    return False


def test_processor_can_never_delete_originals(resources: dict[str, Any]) -> None:
    statements = _role_statements(resources, "WorkerRole")
    # Neither on originals/* nor on the whole bucket (bucket/*) nor anything wider.
    assert not _deletes_on(statements, r"/originals|^<token>/\*$|^\*$")
    assert _grants(statements, "s3:GetObject", r"/originals/\*$")
    assert _grants(statements, "s3:PutObject", r"/outputs/\*$")
    assert _grants(statements, "s3:DeleteObject", r"/outputs/\*$")
    assert not _grants(statements, "s3:GetObject", r"<token>$")
    # And an explicit deny, in case a wider grant is ever added.
    assert any(
        st["Effect"] == "Deny"
        and "s3:DeleteObject" in _as_list(st["Action"])
        and any(_flatten(r).endswith("/originals/*") for r in _as_list(st["Resource"]))
        for st in statements
    )
    assert _grants(statements, "sqs:ReceiveMessage", r".*")
    assert _grants(statements, "sqs:SendMessage", r".*")


def test_gateway_cannot_delete_objects_and_gallery_can(resources: dict[str, Any]) -> None:
    gateway = _role_statements(resources, "GatewayTaskRole")
    assert not any(
        a.startswith("s3:") or a == "*"
        for st in gateway
        if st["Effect"] == "Allow"
        for a in _as_list(st["Action"])
    )
    assert _grants(gateway, "sqs:SendMessage", r".*")
    assert not _grants(gateway, "sqs:ReceiveMessage", r".*")

    gallery = _role_statements(resources, "GalleryTaskRole")
    assert _grants(gallery, "s3:PutObject", r"/originals/\*$")
    assert _grants(gallery, "s3:DeleteObject", r"/originals/\*$")
    assert _grants(gallery, "sqs:ReceiveMessage", r".*")
    assert not _grants(gallery, "sqs:SendMessage", r".*")


def test_no_role_has_admin_or_wildcard_s3(resources: dict[str, Any]) -> None:
    for props in _of_type(resources, "AWS::IAM::Policy").values():
        for st in props["PolicyDocument"]["Statement"]:
            actions = _as_list(st["Action"])
            assert "*" not in actions
            assert "s3:*" not in actions


@pytest.mark.slow
def test_cdk_app_synthesises_with_default_assets(tmp_path: Path) -> None:
    """What ``cdk synth``/``cdk deploy`` run: app.py with no context builds the image and
    the worker source from this repository as assets (no Docker needed to synthesise)."""
    import subprocess

    out = tmp_path / "cdk.out"
    env = {
        **os.environ,
        "CDK_OUTDIR": str(out),
        "CDK_CONTEXT_JSON": json.dumps(
            {"alarmEmail": "ops@example.org", "publicUrl": "https://videos.example.org"}
        ),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "1",
    }
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=STACK_FILE.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    template = json.loads((out / "VideoForge.template.json").read_text())
    resources = template["Resources"]

    images = {
        json.dumps(c["Image"])
        for p in _of_type(resources, "AWS::ECS::TaskDefinition").values()
        for c in _app_containers(p)
    }
    assert len(images) == 1
    assert "cdk-hnb659fds-container-assets" in images.pop()
    subscriptions = _of_type(resources, "AWS::SNS::Subscription").values()
    assert [s["Endpoint"] for s in subscriptions] == ["ops@example.org"]
    # The public URL reaches the services and the bucket's CORS rule.
    _, bucket = _one(resources, "AWS::S3::Bucket")
    (cors,) = bucket["CorsConfiguration"]["CorsRules"]
    assert cors["AllowedOrigins"] == ["https://videos.example.org"]
    for props in _of_type(resources, "AWS::ECS::TaskDefinition").values():
        for container in _app_containers(props):
            env = {e["Name"]: e["Value"] for e in container["Environment"]}
            assert env["PUBLIC_URL"] == "https://videos.example.org"
            assert env["CORS_ORIGINS"] == "https://videos.example.org"

    assets = json.loads((out / "VideoForge.assets.json").read_text())
    (docker_asset,) = assets["dockerImages"].values()
    assert (out / docker_asset["source"]["directory"] / "Dockerfile").is_file()
    zipped = [
        out / a["source"]["path"]
        for a in assets["files"].values()
        if a["source"].get("packaging") == "zip"
    ]
    # Two directories are shipped as zips: the worker's source and the Cognito trigger.
    (staged,) = [p for p in zipped if (p / "requirements.lock").exists()]
    (trigger,) = [p for p in zipped if p != staged]
    assert sorted(f.name for f in trigger.iterdir()) == ["pre_token_generation.py"]
    assert (staged / "requirements.lock").is_file()
    assert (staged / "src" / "videoforge" / "cli.py").is_file()
    for private in (".venv", ".git", "node_modules", "tests", ".env"):
        assert not (staged / private).exists(), private

    _, lt = _one(resources, "AWS::EC2::LaunchTemplate")
    script = _flatten(lt["LaunchTemplateData"]["UserData"])
    assert "--constraint /opt/videoforge/src/requirements.lock /opt/videoforge/src" in script
    assert ".download_file(" in script


def test_access_tokens_carry_the_display_name(resources: dict[str, Any]) -> None:
    """A Pre Token Generation trigger (event version 2, which can change access tokens;
    the pool is on the Essentials plan that allows it) runs the repository's handler."""
    _, pool = _one(resources, "AWS::Cognito::UserPool")
    assert pool["UserPoolTier"] == "ESSENTIALS"
    config = pool["LambdaConfig"]["PreTokenGenerationConfig"]
    assert config["LambdaVersion"] == "V2_0"
    fn_id = config["LambdaArn"]["Fn::GetAtt"][0]
    function = resources[fn_id]["Properties"]
    assert function["Handler"] == "pre_token_generation.handler"
    assert function["Runtime"].startswith("python3.")
    permissions = _of_type(resources, "AWS::Lambda::Permission").values()
    assert any(
        p["Principal"] == "cognito-idp.amazonaws.com"
        and p["FunctionName"] == {"Fn::GetAtt": [fn_id, "Arn"]}
        for p in permissions
    )


def test_playback_goes_through_a_signed_cdn_in_front_of_the_private_bucket(
    resources: dict[str, Any],
) -> None:
    _, dist = _one(resources, "AWS::CloudFront::Distribution")
    config = dist["DistributionConfig"]
    (origin,) = config["Origins"]
    # Origin access control: CloudFront signs its reads; the bucket stays private.
    assert "OriginAccessControlId" in origin
    assert origin["S3OriginConfig"].get("OriginAccessIdentity", "") == ""
    _, oac = _one(resources, "AWS::CloudFront::OriginAccessControl")
    assert oac["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    _, key = _one(resources, "AWS::CloudFront::PublicKey")
    assert key["PublicKeyConfig"]["EncodedKey"] == CDN_PUBLIC_KEY
    key_group_id, _ = _one(resources, "AWS::CloudFront::KeyGroup")
    behaviors = [config["DefaultCacheBehavior"], *config["CacheBehaviors"]]
    for behavior in behaviors:
        # Only URLs signed with the gallery's key are answered.
        assert behavior["TrustedKeyGroups"] == [{"Ref": key_group_id}]
        assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    policies = _of_type(resources, "AWS::CloudFront::CachePolicy")
    by_id: dict[str, dict[str, Any]] = {
        name: props["CachePolicyConfig"] for name, props in policies.items()
    }

    def policy(behavior: dict[str, Any]) -> dict[str, Any]:
        return by_id[behavior["CachePolicyId"]["Ref"]]

    media = policy(config["DefaultCacheBehavior"])
    assert media["DefaultTTL"] >= 30 * 86400  # segments are immutable per job
    for found in by_id.values():
        # Signed query strings are never part of the cache key.
        params = found["ParametersInCacheKeyAndForwardedToOrigin"]
        assert params["QueryStringsConfig"]["QueryStringBehavior"] == "none"
    short = {b["PathPattern"]: policy(b) for b in config["CacheBehaviors"]}
    assert set(short) == {"*.m3u8", "*.mpd"}
    assert all(p["DefaultTTL"] <= 60 for p in short.values())
    # The bucket lets this distribution (and nothing public) read it.
    bucket_policies = _of_type(resources, "AWS::S3::BucketPolicy")
    statements = [st for p in bucket_policies.values() for st in p["PolicyDocument"]["Statement"]]
    assert any(
        st.get("Principal", {}).get("Service") == "cloudfront.amazonaws.com"
        and st["Action"] == "s3:GetObject"
        for st in statements
    )
    # The gallery signs for that distribution with that key.
    for props in _of_type(resources, "AWS::ECS::TaskDefinition").values():
        for container in props["ContainerDefinitions"]:
            env = {e["Name"]: e["Value"] for e in container.get("Environment", [])}
            if "gallery" in container["Command"]:
                assert "CLOUDFRONT_URL" in env
                assert env["CLOUDFRONT_KEY_PAIR_ID"] == {
                    "Ref": next(
                        n for n, r in resources.items() if r["Type"] == "AWS::CloudFront::PublicKey"
                    )
                }
            else:
                assert "CLOUDFRONT_URL" not in env


def test_traces_go_to_x_ray_from_every_task_and_worker(
    resources: dict[str, Any], stack_module: ModuleType
) -> None:
    roles = _of_type(resources, "AWS::IAM::Role")

    def managed(role_ref: dict[str, Any]) -> str:
        role = roles[role_ref["Fn::GetAtt"][0]]
        return json.dumps(role.get("ManagedPolicyArns", []))

    services = [
        t for t in _of_type(resources, "AWS::ECS::TaskDefinition").values()
        if {"gateway", "gallery"} & {c for a in _app_containers(t) for c in a["Command"]}
    ]  # fmt: skip
    assert len(services) == 2
    for task in services:
        sidecars = [c for c in task["ContainerDefinitions"] if c not in _app_containers(task)]
        (collector,) = sidecars
        assert collector["Image"] == stack_module.ADOT_COLLECTOR_IMAGE
        assert collector["Command"] == ["--config=/etc/ecs/ecs-default-config.yaml"]
        assert collector["Essential"] is False
        for app in _app_containers(task):
            env = {e["Name"]: e["Value"] for e in app.get("Environment", [])}
            assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4318"
            assert env["OTEL_SERVICE_NAME"].startswith("videoforge-")
        assert "AWSXRayDaemonWriteAccess" in managed(task["TaskRoleArn"])

    _, lt = _one(resources, "AWS::EC2::LaunchTemplate")
    script = _flatten(lt["LaunchTemplateData"]["UserData"])
    assert "amazon-cloudwatch-agent-ctl -a fetch-config" in script
    assert "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318" in script
    config = json.loads(
        script.split("amazon-cloudwatch-agent.json <<'VIDEOFORGE_EOF'\n")[1].split(
            "VIDEOFORGE_EOF"
        )[0]
    )
    assert config["traces"]["traces_collected"]["otlp"]["http_endpoint"] == "127.0.0.1:4318"
    (files,) = config["logs"]["logs_collected"]["files"]["collect_list"]
    assert files["file_path"] == stack_module.WORKER_LOG_FILE
    assert "videoforge-journal-export.service" in script
    # The export (the whole boot, resuming at its cursor) writes the file the agent
    # reads, and that file is rotated (both verified in tests/deploy/test_systemd.py).
    worker_files = stack_module.WORKER_FILES_DIR
    export = (worker_files / "videoforge-journal-export.service").read_text()
    rotation = (worker_files / "videoforge-worker.logrotate").read_text()
    assert export in script
    assert rotation in script
    assert "cat > /etc/logrotate.d/videoforge-worker <<" in script
    assert f">> {stack_module.WORKER_LOG_FILE}'" in export
    assert f"\n{stack_module.WORKER_LOG_FILE} {{" in rotation
    worker_role = next(
        r
        for r in roles.values()
        if "ec2.amazonaws.com" in json.dumps(r["AssumeRolePolicyDocument"])
    )
    policies = json.dumps(worker_role["ManagedPolicyArns"])
    assert "CloudWatchAgentServerPolicy" in policies
    assert "AWSXRayDaemonWriteAccess" in policies


def test_every_log_group_has_a_retention(resources: dict[str, Any]) -> None:
    groups = _of_type(resources, "AWS::Logs::LogGroup")
    assert len(groups) >= 4  # gateway, gallery, sweep, workers
    assert all(props.get("RetentionInDays") for props in groups.values()), groups


def test_lifecycle_events_go_to_a_bus_only_the_gallery_can_put_on(
    resources: dict[str, Any],
) -> None:
    bus_id, bus = _one(resources, "AWS::Events::EventBus")
    assert bus["Name"] == "videoforge-events"
    bus_arn = {"Fn::GetAtt": [bus_id, "Arn"]}

    gallery = _role_statements(resources, "GalleryTaskRole")
    assert any(
        st["Effect"] == "Allow"
        and _as_list(st["Action"]) == ["events:PutEvents"]
        and _as_list(st["Resource"]) == [bus_arn]
        for st in gallery
    )
    for role in ("GatewayTaskRole", "WorkerRole"):
        assert not _grants(_role_statements(resources, role), "events:PutEvents", r".*"), role

    # The gallery's tasks are told the bus; no other task is.
    told: set[str] = set()
    for props in _of_type(resources, "AWS::ECS::TaskDefinition").values():
        for container in _app_containers(props):
            env = {e["Name"]: e["Value"] for e in container.get("Environment", [])}
            if "EVENTBRIDGE_BUS_NAME" in env:
                assert env["EVENTBRIDGE_BUS_NAME"] == {"Ref": bus_id}
                told.update(container["Command"])
    assert told == {"gallery"}

    # The example rule: video.failed from videoforge, on that bus, to the alarms topic,
    # which lets EventBridge publish to it.
    (rule,) = [
        r for r in _of_type(resources, "AWS::Events::Rule").values() if r.get("EventBusName")
    ]
    assert rule["EventBusName"] == {"Ref": bus_id}
    assert rule["EventPattern"] == {"source": ["videoforge"], "detail-type": ["video.failed"]}
    topic = _logical_id(resources, "AWS::SNS::Topic", "OpsAlarms")
    assert [t["Arn"] for t in rule["Targets"]] == [{"Ref": topic}]
    policies = _of_type(resources, "AWS::SNS::TopicPolicy").values()
    assert any(
        {"Ref": topic} in p["Topics"]
        and any(
            st["Principal"] == {"Service": "events.amazonaws.com"}
            and "sns:Publish" in _as_list(st["Action"])
            for st in p["PolicyDocument"]["Statement"]
        )
        for p in policies
    )
