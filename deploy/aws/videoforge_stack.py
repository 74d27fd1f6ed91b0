"""VideoForge on AWS: the distributed architecture as one CDK stack.

- Network: a VPC over 2 AZs with public subnets (the ALB, NAT) and private subnets
  (services, workers, database, cache).
- Gateway and Gallery: ECS Fargate services behind ONE Application Load Balancer.
  ``/api/gallery/*``, ``/api/upload/*`` and ``/api/webhooks`` go to the gallery, the rest to the
  gateway (as the embedded server dispatches). Target health on ``/health``; 2-10 tasks
  each, scaled on CPU and on ALB requests per target.
- Video Processor: an EC2 Auto Scaling Group (0-10 instances) from a launch template
  whose user data installs ffmpeg and the package and runs ``videoforge worker`` under
  systemd (``deploy/systemd/``). It scales on the jobs-queue backlog per instance
  (target tracking on visible messages / in-service instances, target 5) plus a
  scale-from-zero step; a lifecycle hook holds terminating instances until the worker
  has finished or requeued its job.
- Data: RDS PostgreSQL (credentials generated into Secrets Manager), ElastiCache Redis
  (TLS), a private versioned encrypted S3 bucket with browser-upload CORS, SQS jobs and
  events queues each with a dead-letter queue and an alarm on its depth, a Cognito user
  pool + app client + ``admin`` group.
- Events for integrations: the ``videoforge-events`` EventBridge bus the gallery puts
  lifecycle events on (``EVENTBRIDGE_BUS_NAME``), with an example rule sending
  ``video.failed`` to the alarms topic.
- IAM: one role per service with only what it uses. The processor reads
  ``originals/*`` and writes ``outputs/*``; it can never delete an original.

Importing this module has no side effects; ``app.py`` instantiates the stack.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import (
    CfnOutput,
    Duration,
    RemovalPolicy,
    Stack,
    Tags,
)
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_servicediscovery as servicediscovery
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

REPO_ROOT = Path(__file__).resolve().parents[2]
SYSTEMD_DIR = REPO_ROOT / "deploy" / "systemd"
if importlib.util.find_spec("videoforge") is None:  # cdk run from a checkout, not installed
    sys.path.insert(0, str(REPO_ROOT / "src"))
# The paths the gallery answers and the key layout are the code's own facts, not copies.
from videoforge.infra.storage.keys import IMPORT_NAME, ORIGINALS_ROOT, OUTPUTS_ROOT  # noqa: E402
from videoforge.paths import load_balancer_patterns  # noqa: E402

COGNITO_TRIGGERS_DIR = Path(__file__).resolve().parent / "cognito_triggers"

GALLERY_PORT = 5000
GATEWAY_PORT = 3000
WORKER_METRICS_PORT = 9100
#: Where processes send traces: the ADOT collector beside each task (ECS) and the
#: CloudWatch agent on each worker instance, both relaying to X-Ray.
OTLP_ENDPOINT = "http://127.0.0.1:4318"
#: The EventBridge bus the gallery publishes lifecycle events to (EVENTBRIDGE_BUS_NAME).
EVENT_BUS_NAME = "videoforge-events"
ADOT_COLLECTOR_IMAGE = "public.ecr.aws/aws-observability/aws-otel-collector:v0.43.1"
#: The worker's journal lines, exported to a file the CloudWatch agent ships.
WORKER_LOG_FILE = "/var/log/videoforge/worker.log"
CLOUDWATCH_AGENT_DEB = "https://amazoncloudwatch-agent.s3.amazonaws.com/ubuntu/amd64/latest/amazon-cloudwatch-agent.deb"
LIFECYCLE_HOOK_NAME = "videoforge-graceful-scale-in"
#: Seconds the worker may spend finishing a job after SIGTERM (SHUTDOWN_GRACE_SECONDS).
WORKER_SHUTDOWN_GRACE_SECONDS = 600
#: How long a terminating instance is held for the worker; must exceed the unit's
#: TimeoutStopSec (which exceeds the grace).
LIFECYCLE_HEARTBEAT_SECONDS = 900
DLQ_MAX_RECEIVE_COUNT = 5
BACKLOG_PER_INSTANCE_TARGET = 5
#: Public SSM parameter with the current Ubuntu 24.04 LTS AMI (ffmpeg and Python 3.12
#: are in its archive). Resolved by CloudFormation at deploy time: synth stays offline.
UBUNTU_AMI_PARAMETER = (
    "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"
)
# Paths the gallery answers; everything else is the gateway's.
GALLERY_PATHS = load_balancer_patterns()


@dataclass(frozen=True)
class VideoForgeConfig:
    """Deployment choices. Defaults are a small but production-shaped deployment."""

    #: Container image for gateway/gallery/sweep. ``None``: build from the repository's
    #: Dockerfile as a CDK asset (needs Docker where ``cdk deploy`` runs).
    image: str | None = None
    #: What the workers pip-install. ``None``: the repository source, uploaded as an S3
    #: asset and installed with ``requirements.lock`` as constraints.
    worker_package: str | None = None
    #: Origins allowed to call the API and to PUT/POST to the bucket from a browser.
    #: Empty: the load balancer's own http:// address.
    cors_origins: tuple[str, ...] = ()
    #: An ACM certificate for HTTPS on the load balancer (HTTP then redirects).
    certificate_arn: str | None = None
    #: The URL users open (e.g. https://videos.example.org, a DNS name pointing at the
    #: ALB). Default: the ALB's own address.
    public_url: str | None = None
    #: E-mail address subscribed to the operations alarms topic.
    alarm_email: str | None = None
    service_min_tasks: int = 2
    service_max_tasks: int = 10
    service_cpu: int = 512
    service_memory_mib: int = 1024
    cpu_target_percent: int = 60
    requests_per_target: int = 500
    worker_min_instances: int = 0
    worker_max_instances: int = 10
    worker_instance_type: str = "c6i.xlarge"
    worker_volume_gib: int = 100
    worker_concurrent_jobs: int = 1
    jobs_visibility_timeout_seconds: int = 300
    abort_incomplete_multipart_days: int = 2
    noncurrent_version_expiration_days: int = 30
    db_instance_type: str = "t4g.medium"
    db_allocated_storage_gib: int = 50
    db_multi_az: bool = True
    db_backup_retention_days: int = 14
    redis_node_type: str = "cache.t4g.small"
    nat_gateways: int = 1
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    #: RETAIN keeps data (bucket, database snapshot, user pool) when the stack is deleted.
    retain_data: bool = True
    extra_environment: dict[str, str] = field(default_factory=dict)
    #: Playback through CloudFront: the PEM public key of the key pair the gallery signs
    #: CDN URLs with (its private key goes into the ``CdnPrivateKey`` secret the stack
    #: creates). ``None``: no distribution; players fetch from S3 presigned URLs.
    cdn_public_key_pem: str | None = None
    #: How long CloudFront keeps segments, MP4s, stills and captions (never change once
    #: written: output keys are per job).
    cdn_media_ttl_days: int = 365


#: Files only the AWS workers need (the journal export for the CloudWatch agent and its
#: rotation), shipped verbatim in the user data like ``deploy/systemd``'s.
WORKER_FILES_DIR = Path(__file__).resolve().parent / "worker"


def read_unit(name: str) -> str:
    """A file from ``deploy/systemd`` (shipped verbatim in the worker's user data)."""
    return (SYSTEMD_DIR / name).read_text(encoding="utf-8")


def unit_timeout_stop_sec(unit_text: str) -> int:
    """``TimeoutStopSec`` of a unit file, in seconds (plain integer form)."""
    match = re.search(r"^TimeoutStopSec=(\d+)\s*$", unit_text, re.MULTILINE)
    if not match:
        raise ValueError("unit has no TimeoutStopSec=<seconds>")
    return int(match.group(1))


class VideoForgeStack(Stack):
    """Every AWS resource VideoForge needs, wired together with least privilege."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: VideoForgeConfig | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.config = config or VideoForgeConfig()
        Tags.of(self).add("app", "videoforge")
        removal = RemovalPolicy.RETAIN if self.config.retain_data else RemovalPolicy.DESTROY

        self._network()
        self._alarms_topic()
        self._event_bus()
        self._data(removal)
        self._identity(removal)
        self._load_balancer()
        self._services()
        self._workers()
        self._sweep()
        self._outputs()

    # ------------------------------------------------------------------ network
    def _network(self) -> None:
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=self.config.nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC),
                ec2.SubnetConfiguration(
                    name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS
                ),
            ],
        )
        self.private_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        # S3 traffic from services and workers stays off the NAT gateway.
        self.vpc.add_gateway_endpoint("S3Endpoint", service=ec2.GatewayVpcEndpointAwsService.S3)

        self.alb_sg = ec2.SecurityGroup(self, "AlbSg", vpc=self.vpc, description="Public ALB")
        self.services_sg = ec2.SecurityGroup(
            self, "ServicesSg", vpc=self.vpc, description="Gateway and gallery tasks"
        )
        self.workers_sg = ec2.SecurityGroup(
            self, "WorkersSg", vpc=self.vpc, description="Video processor instances"
        )
        self.db_sg = ec2.SecurityGroup(
            self, "DbSg", vpc=self.vpc, description="PostgreSQL", allow_all_outbound=False
        )
        self.redis_sg = ec2.SecurityGroup(
            self, "RedisSg", vpc=self.vpc, description="Redis", allow_all_outbound=False
        )
        for port in (GATEWAY_PORT, GALLERY_PORT):
            self.services_sg.add_ingress_rule(self.alb_sg, ec2.Port.tcp(port), "ALB to service")
        # The gateway calls the gallery directly (Cloud Map name), not through the ALB.
        self.services_sg.add_ingress_rule(
            self.services_sg, ec2.Port.tcp(GALLERY_PORT), "gateway to gallery"
        )
        self.workers_sg.add_ingress_rule(
            ec2.Peer.ipv4(self.vpc.vpc_cidr_block),
            ec2.Port.tcp(WORKER_METRICS_PORT),
            "Prometheus scrape inside the VPC",
        )
        for sg, name in ((self.services_sg, "services"), (self.workers_sg, "workers")):
            self.db_sg.add_ingress_rule(sg, ec2.Port.tcp(5432), f"{name} to PostgreSQL")
            self.redis_sg.add_ingress_rule(sg, ec2.Port.tcp(6379), f"{name} to Redis")

    def _event_bus(self) -> None:
        """The bus the gallery publishes lifecycle events to (Source ``videoforge``,
        DetailType the event type, Detail the envelope webhooks receive), and an example
        rule on it: every ``video.failed`` goes to the operations alarms topic."""
        self.event_bus = events.EventBus(self, "LifecycleEvents", event_bus_name=EVENT_BUS_NAME)
        events.Rule(
            self,
            "VideoFailedToAlarms",
            event_bus=self.event_bus,
            description="Example integration: failed videos to the operations alarms topic",
            event_pattern=events.EventPattern(source=["videoforge"], detail_type=["video.failed"]),
            targets=[targets.SnsTopic(self.alarms)],
        )

    def _alarms_topic(self) -> None:
        self.alarms = sns.Topic(self, "OpsAlarms", display_name="VideoForge alarms")
        if self.config.alarm_email:
            self.alarms.add_subscription(subscriptions.EmailSubscription(self.config.alarm_email))

    # --------------------------------------------------------------------- data
    def _data(self, removal: RemovalPolicy) -> None:
        cfg = self.config
        self.db = rds.DatabaseInstance(
            self,
            "Database",
            engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_16),
            instance_type=ec2.InstanceType(cfg.db_instance_type),
            vpc=self.vpc,
            vpc_subnets=self.private_subnets,
            security_groups=[self.db_sg],
            database_name="videoforge",
            # A generated password in Secrets Manager; tasks get it injected, workers
            # fetch it at start (deploy/systemd/videoforge-secrets-env).
            credentials=rds.Credentials.from_generated_secret("videoforge"),
            multi_az=cfg.db_multi_az,
            allocated_storage=cfg.db_allocated_storage_gib,
            max_allocated_storage=cfg.db_allocated_storage_gib * 4,
            storage_encrypted=True,
            backup_retention=Duration.days(cfg.db_backup_retention_days),
            deletion_protection=cfg.retain_data,
            removal_policy=(RemovalPolicy.SNAPSHOT if cfg.retain_data else RemovalPolicy.DESTROY),
            publicly_accessible=False,
            auto_minor_version_upgrade=True,
            cloudwatch_logs_exports=["postgresql"],
        )
        assert self.db.secret is not None
        self.db_secret = self.db.secret

        # Settings refuse the development JWT secret in production, for every service.
        self.jwt_secret = self._generated_secret("JwtSecret", "VideoForge JWT_SECRET")
        # /metrics on the gateway's and gallery's port answers only this bearer token;
        # the scraper (inside the VPC) reads it from here.
        self.metrics_token = self._generated_secret(
            "MetricsToken", "VideoForge METRICS_TOKEN (Authorization: Bearer for /metrics)"
        )

        redis_subnets = elasticache.CfnSubnetGroup(
            self,
            "RedisSubnets",
            description="VideoForge Redis",
            subnet_ids=self.vpc.select_subnets(
                subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS
            ).subnet_ids,
        )
        self.redis = elasticache.CfnReplicationGroup(
            self,
            "Redis",
            replication_group_description="VideoForge cache, rate limits, view buffer",
            engine="redis",
            cache_node_type=cfg.redis_node_type,
            num_cache_clusters=2,
            automatic_failover_enabled=True,
            multi_az_enabled=True,
            transit_encryption_enabled=True,
            at_rest_encryption_enabled=True,
            cache_subnet_group_name=redis_subnets.ref,
            security_group_ids=[self.redis_sg.security_group_id],
        )
        self.redis_url = (
            f"rediss://{self.redis.attr_primary_end_point_address}:"
            f"{self.redis.attr_primary_end_point_port}/0"
        )

        self.bucket = s3.Bucket(
            self,
            "Media",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="abort-incomplete-multipart-uploads",
                    abort_incomplete_multipart_upload_after=Duration.days(
                        cfg.abort_incomplete_multipart_days
                    ),
                ),
                s3.LifecycleRule(
                    id="expire-noncurrent-versions",
                    noncurrent_version_expiration=Duration.days(
                        cfg.noncurrent_version_expiration_days
                    ),
                ),
            ],
            removal_policy=removal,
            auto_delete_objects=not cfg.retain_data,
        )

        def queue_pair(name: str, visibility: int) -> tuple[sqs.Queue, sqs.Queue]:
            dlq = sqs.Queue(
                self,
                f"{name}Dlq",
                retention_period=Duration.days(14),
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
            )
            queue = sqs.Queue(
                self,
                f"{name}Queue",
                visibility_timeout=Duration.seconds(visibility),
                retention_period=Duration.days(4),
                receive_message_wait_time=Duration.seconds(20),
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                dead_letter_queue=sqs.DeadLetterQueue(
                    queue=dlq, max_receive_count=DLQ_MAX_RECEIVE_COUNT
                ),
            )
            alarm = dlq.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(1), statistic="Maximum"
            ).create_alarm(
                self,
                f"{name}DlqNotEmpty",
                alarm_description=(
                    f"Messages in the {name.lower()} dead-letter queue: see "
                    "docs/operations.md, 'Dead-letter queues'."
                ),
                threshold=0,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(cw_actions.SnsAction(self.alarms))
            return queue, dlq

        self.jobs_queue, self.jobs_dlq = queue_pair("Jobs", cfg.jobs_visibility_timeout_seconds)
        self.events_queue, self.events_dlq = queue_pair("Events", 60)

    def _identity(self, removal: RemovalPolicy) -> None:
        self.user_pool = cognito.UserPool(
            self,
            "Users",
            self_sign_up_enabled=True,
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            password_policy=cognito.PasswordPolicy(
                min_length=10,
                require_lowercase=True,
                require_uppercase=False,
                require_digits=True,
                require_symbols=False,
            ),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            # Essentials: access tokens can be customised by the trigger below.
            feature_plan=cognito.FeaturePlan.ESSENTIALS,
            removal_policy=removal,
        )
        # Access tokens carry the user's display name (see the trigger's docstring).
        self.pre_token_trigger = lambda_.Function(
            self,
            "PreTokenGeneration",
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler="pre_token_generation.handler",
            code=lambda_.Code.from_asset(
                str(COGNITO_TRIGGERS_DIR), exclude=["__pycache__", "*.pyc"]
            ),
            timeout=Duration.seconds(5),
            memory_size=128,
            description="VideoForge: the display name in Cognito access tokens",
        )
        self.user_pool.add_trigger(
            cognito.UserPoolOperation.PRE_TOKEN_GENERATION_CONFIG,
            self.pre_token_trigger,
            cognito.LambdaVersion.V2_0,
        )
        self.user_pool_client = self.user_pool.add_client(
            "WebClient",
            # USER_PASSWORD_AUTH for the gateway's login; refresh tokens are always allowed.
            auth_flows=cognito.AuthFlow(user_password=True),
            generate_secret=False,
            # The gateway talks to Cognito's API directly; no hosted-UI OAuth flows.
            disable_o_auth=True,
            prevent_user_existence_errors=True,
            access_token_validity=Duration.minutes(15),
            id_token_validity=Duration.minutes(15),
            refresh_token_validity=Duration.days(30),
        )
        self.admin_group = cognito.CfnUserPoolGroup(
            self,
            "AdminGroup",
            user_pool_id=self.user_pool.user_pool_id,
            group_name="admin",
            description="VideoForge administrators",
        )

    # ------------------------------------------------------------ load balancer
    def _load_balancer(self) -> None:
        cfg = self.config
        self.alb = elbv2.ApplicationLoadBalancer(
            self,
            "Alb",
            vpc=self.vpc,
            internet_facing=True,
            security_group=self.alb_sg,
            # SSE progress streams stay open between heartbeats.
            idle_timeout=Duration.seconds(120),
            drop_invalid_header_fields=True,
        )
        if cfg.certificate_arn:
            self.alb_sg.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS")
            self.alb_sg.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(80), "HTTP")
            self.listener = self.alb.add_listener(
                "Https",
                port=443,
                certificates=[elbv2.ListenerCertificate.from_arn(cfg.certificate_arn)],
                ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
                open=False,
            )
            self.alb.add_redirect(source_port=80, target_port=443)
            self.public_url = cfg.public_url or f"https://{self.alb.load_balancer_dns_name}"
        else:
            self.alb_sg.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(80), "HTTP")
            self.listener = self.alb.add_listener(
                "Http",
                port=80,
                open=False,
            )
            self.public_url = cfg.public_url or f"http://{self.alb.load_balancer_dns_name}"
        # Prometheus scrapes tasks inside the VPC; /metrics is not for the internet.
        self.listener.add_action(
            "HideMetrics",
            priority=5,
            conditions=[elbv2.ListenerCondition.path_patterns(["/metrics"])],
            action=elbv2.ListenerAction.fixed_response(
                404,
                content_type="application/json",
                message_body='{"error":{"code":"not_found","message":"Not found."}}',
            ),
        )
        self.cors_origins = list(cfg.cors_origins) or [self.public_url]

        self.bucket.add_cors_rule(
            # Browsers upload straight to the bucket (presigned PUT, POST and multipart
            # parts) and play from it (GET).
            allowed_methods=[
                s3.HttpMethods.PUT,
                s3.HttpMethods.POST,
                s3.HttpMethods.GET,
                s3.HttpMethods.HEAD,
            ],
            allowed_origins=self.cors_origins,
            allowed_headers=["*"],
            # Completing a multipart upload needs each part's ETag.
            exposed_headers=["ETag"],
            max_age=3000,
        )

    # ---------------------------------------------------------------- services
    def _common_environment(self) -> dict[str, str]:
        """The environment every process reads (docs/operations.md lists each variable)."""
        env = {
            "VIDEOFORGE_ENV": "production",
            "LOG_FORMAT": "json",
            "AWS_REGION": self.region,
            "DB_HOST": self.db.db_instance_endpoint_address,
            "DB_PORT": self.db.db_instance_endpoint_port,
            "DB_NAME": "videoforge",
            "S3_BUCKET_NAME": self.bucket.bucket_name,
            "SQS_QUEUE_URL": self.jobs_queue.queue_url,
            "SQS_EVENTS_QUEUE_URL": self.events_queue.queue_url,
            "REDIS_URL": self.redis_url,
            "COGNITO_USER_POOL_ID": self.user_pool.user_pool_id,
            "COGNITO_CLIENT_ID": self.user_pool_client.user_pool_client_id,
            "PUBLIC_URL": self.public_url,
            "CORS_ORIGINS": ",".join(self.cors_origins),
            "QUEUE_MAX_RECEIVES": str(DLQ_MAX_RECEIVE_COUNT),
            "QUEUE_VISIBILITY_TIMEOUT": str(self.config.jobs_visibility_timeout_seconds),
        }
        env.update(self.config.extra_environment)
        return env

    def _generated_secret(self, construct_id: str, description: str) -> secretsmanager.Secret:
        """A random 64-character value (letters and digits) kept in Secrets Manager."""
        return secretsmanager.Secret(
            self,
            construct_id,
            description=description,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True
            ),
        )

    def _secrets(self) -> dict[str, ecs.Secret]:
        return {
            "DB_USER": ecs.Secret.from_secrets_manager(self.db_secret, "username"),
            "DB_PASSWORD": ecs.Secret.from_secrets_manager(self.db_secret, "password"),
            "JWT_SECRET": ecs.Secret.from_secrets_manager(self.jwt_secret),
        }

    def _image(self) -> ecs.ContainerImage:
        if self.config.image:
            return ecs.ContainerImage.from_registry(self.config.image)
        return ecs.ContainerImage.from_asset(str(REPO_ROOT))

    def _cdn(self) -> tuple[dict[str, str], dict[str, ecs.Secret]]:
        """A CloudFront distribution in front of the private bucket (origin access
        control), answering only URLs signed by the gallery's key (a key group). Returns
        the gallery's environment and secrets for it (none without a CDN)."""
        cfg = self.config
        if cfg.cdn_public_key_pem is None:
            return {}, {}
        public_key = cloudfront.PublicKey(
            self, "CdnPublicKey", encoded_key=cfg.cdn_public_key_pem,
            comment="VideoForge gallery: signs playback URLs",
        )  # fmt: skip
        key_group = cloudfront.KeyGroup(self, "CdnKeyGroup", items=[public_key])
        # Signed query strings (Expires, Signature, Key-Pair-Id) never enter the cache
        # key: CloudFront checks and strips them, so every viewer shares one cached copy.
        media = cloudfront.CachePolicy(
            self,
            "CdnMediaCachePolicy",
            comment="Segments, MP4s, stills, captions: immutable per job",
            default_ttl=Duration.days(cfg.cdn_media_ttl_days),
            max_ttl=Duration.days(cfg.cdn_media_ttl_days),
            min_ttl=Duration.days(1),
            query_string_behavior=cloudfront.CacheQueryStringBehavior.none(),
            header_behavior=cloudfront.CacheHeaderBehavior.none(),
            cookie_behavior=cloudfront.CacheCookieBehavior.none(),
        )
        playlists = cloudfront.CachePolicy(
            self,
            "CdnPlaylistCachePolicy",
            comment="Playlists and manifests: short-lived",
            default_ttl=Duration.seconds(10),
            max_ttl=Duration.seconds(60),
            min_ttl=Duration.seconds(0),
            query_string_behavior=cloudfront.CacheQueryStringBehavior.none(),
            header_behavior=cloudfront.CacheHeaderBehavior.none(),
            cookie_behavior=cloudfront.CacheCookieBehavior.none(),
        )
        cors = cloudfront.ResponseHeadersPolicy(
            self,
            "CdnCorsPolicy",
            cors_behavior=cloudfront.ResponseHeadersCorsBehavior(
                access_control_allow_credentials=False,
                access_control_allow_headers=["Range"],
                access_control_allow_methods=["GET", "HEAD"],
                access_control_allow_origins=list(self.cors_origins) or ["*"],
                origin_override=True,
            ),
        )
        origin = origins.S3BucketOrigin.with_origin_access_control(self.bucket)

        def behavior(policy: cloudfront.ICachePolicy) -> cloudfront.BehaviorOptions:
            return cloudfront.BehaviorOptions(
                origin=origin,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD_OPTIONS,
                cache_policy=policy,
                response_headers_policy=cors,
                trusted_key_groups=[key_group],
            )

        self.distribution = cloudfront.Distribution(
            self,
            "Cdn",
            comment="VideoForge playback",
            default_behavior=behavior(media),
            additional_behaviors={"*.m3u8": behavior(playlists), "*.mpd": behavior(playlists)},
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
        )
        self.cdn_private_key = secretsmanager.Secret(
            self,
            "CdnPrivateKey",
            description="VideoForge CLOUDFRONT_PRIVATE_KEY: put the PEM private key of "
            "the key pair whose public key is cdn_public_key_pem",
        )
        self.cdn_private_key.grant_read(self.gallery_role)
        environment = {
            "CLOUDFRONT_URL": f"https://{self.distribution.distribution_domain_name}",
            "CLOUDFRONT_KEY_PAIR_ID": public_key.public_key_id,
        }
        return environment, {
            "CLOUDFRONT_PRIVATE_KEY": ecs.Secret.from_secrets_manager(self.cdn_private_key)
        }

    def _services(self) -> None:
        cfg = self.config
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=self.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        namespace = servicediscovery.PrivateDnsNamespace(
            self, "Namespace", name="videoforge.internal", vpc=self.vpc
        )
        image = self._image()

        self.gallery_role = iam.Role(
            self,
            "GalleryTaskRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="VideoForge gallery: uploads, playback URLs, deletes; events consumer",
        )
        self.gateway_role = iam.Role(
            self,
            "GatewayTaskRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="VideoForge gateway: creates jobs (sends to the jobs queue)",
        )
        self._grant_gallery(self.gallery_role)
        # The lifecycle events' delivery loop (gallery/lifecycle) puts them on the bus.
        self.event_bus.grant_put_events_to(self.gallery_role)
        self._grant_gateway(self.gateway_role)

        gallery_url = f"http://gallery.videoforge.internal:{GALLERY_PORT}"
        cdn_environment, cdn_secrets = self._cdn()
        self.gallery_service, self.gallery_tg = self._fargate_service(
            "Gallery",
            command=["gallery"],
            port=GALLERY_PORT,
            role=self.gallery_role,
            image=image,
            namespace=namespace,
            environment={**cdn_environment, "EVENTBRIDGE_BUS_NAME": self.event_bus.event_bus_name},
            secrets=cdn_secrets,
        )
        self.gateway_service, self.gateway_tg = self._fargate_service(
            "Gateway",
            command=["gateway"],
            port=GATEWAY_PORT,
            role=self.gateway_role,
            image=image,
            namespace=namespace,
            environment={"GALLERY_URL": gallery_url},
            migrate_first=True,
        )
        # The gateway's tasks migrate the database; the gallery refuses an
        # un-migrated one, so it is created once the gateway is up.
        self.gallery_service.node.add_dependency(self.gateway_service)

        self.listener.add_target_groups(
            "GalleryRoute",
            priority=10,
            conditions=[elbv2.ListenerCondition.path_patterns(GALLERY_PATHS)],
            target_groups=[self.gallery_tg],
        )
        self.listener.add_target_groups("GatewayDefault", target_groups=[self.gateway_tg])

        for name, service, tg in (
            ("Gallery", self.gallery_service, self.gallery_tg),
            ("Gateway", self.gateway_service, self.gateway_tg),
        ):
            scaling = service.auto_scale_task_count(
                min_capacity=cfg.service_min_tasks, max_capacity=cfg.service_max_tasks
            )
            scaling.scale_on_cpu_utilization(
                f"{name}Cpu",
                target_utilization_percent=cfg.cpu_target_percent,
                scale_in_cooldown=Duration.seconds(120),
                scale_out_cooldown=Duration.seconds(60),
            )
            scaling.scale_on_request_count(
                f"{name}Requests",
                requests_per_target=cfg.requests_per_target,
                target_group=tg,
                scale_in_cooldown=Duration.seconds(120),
                scale_out_cooldown=Duration.seconds(60),
            )
            self._service_alarms(name, tg)

    def _service_alarms(self, name: str, tg: elbv2.ApplicationTargetGroup) -> None:
        """Page on what users feel: failing health checks and bursts of 5xx."""
        unhealthy = tg.metrics.unhealthy_host_count(
            period=Duration.minutes(1), statistic="Maximum"
        ).create_alarm(
            self,
            f"{name}UnhealthyTargets",
            alarm_description=f"{name} tasks failing /health",
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=3,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        errors = tg.metrics.http_code_target(
            elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=Duration.minutes(5), statistic="Sum"
        ).create_alarm(
            self,
            f"{name}ServerErrors",
            alarm_description=f"{name} answered 5xx more than 25 times in 5 minutes",
            threshold=25,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for alarm in (unhealthy, errors):
            alarm.add_alarm_action(cw_actions.SnsAction(self.alarms))

    def _fargate_service(
        self,
        name: str,
        *,
        command: list[str],
        port: int,
        role: iam.Role,
        image: ecs.ContainerImage,
        namespace: servicediscovery.PrivateDnsNamespace,
        environment: dict[str, str],
        migrate_first: bool = False,
        secrets: dict[str, ecs.Secret] | None = None,
    ) -> tuple[ecs.FargateService, elbv2.ApplicationTargetGroup]:
        cfg = self.config
        task = ecs.FargateTaskDefinition(
            self,
            f"{name}Task",
            cpu=cfg.service_cpu,
            memory_limit_mib=cfg.service_memory_mib,
            task_role=role,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        log_group = logs.LogGroup(
            self,
            f"{name}Logs",
            retention=cfg.log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        env = {
            **self._common_environment(),
            "PORT": str(port),
            "HOST": "0.0.0.0",
            # Only the ALB (and the gateway) can reach the tasks: trust their
            # X-Forwarded-For so per-IP rate limits see the real client.
            "FORWARDED_ALLOW_IPS": "*",
            # One process per vCPU of the task (Fargate shows the host's cores to
            # os.cpu_count, not the task's share), at least one.
            "WEB_CONCURRENCY": str(max(1, cfg.service_cpu // 1024)),
            # Traces to the collector sidecar (infra/tracing.py turns tracing on).
            "OTEL_EXPORTER_OTLP_ENDPOINT": OTLP_ENDPOINT,
            "OTEL_SERVICE_NAME": f"videoforge-{name.lower()}",
            **environment,
        }
        container = task.add_container(
            name,
            image=image,
            command=command,
            environment=env,
            secrets={
                **self._secrets(),
                "METRICS_TOKEN": ecs.Secret.from_secrets_manager(self.metrics_token),
                **(secrets or {}),
            },
            port_mappings=[ecs.PortMapping(container_port=port, name=name.lower())],
            logging=ecs.LogDrivers.aws_logs(stream_prefix=name.lower(), log_group=log_group),
            stop_timeout=Duration.seconds(60),
        )
        # The ADOT collector: receives OTLP from the service on localhost and sends
        # the traces to X-Ray (its ECS default configuration does exactly that).
        task.add_container(
            f"{name}Otel",
            image=ecs.ContainerImage.from_registry(ADOT_COLLECTOR_IMAGE),
            command=["--config=/etc/ecs/ecs-default-config.yaml"],
            essential=False,
            memory_reservation_mib=64,
            logging=ecs.LogDrivers.aws_logs(stream_prefix="otel", log_group=log_group),
        )
        role.add_managed_policy(
            iam.ManagedPolicy.from_aws_managed_policy_name("AWSXRayDaemonWriteAccess")
        )
        if migrate_first:
            migrate = task.add_container(
                f"{name}Migrate",
                image=image,
                command=["migrate"],
                essential=False,
                environment=env,
                secrets=self._secrets(),
                logging=ecs.LogDrivers.aws_logs(stream_prefix="migrate", log_group=log_group),
            )
            container.add_container_dependencies(
                ecs.ContainerDependency(
                    container=migrate, condition=ecs.ContainerDependencyCondition.SUCCESS
                )
            )
        service = ecs.FargateService(
            self,
            f"{name}Service",
            cluster=self.cluster,
            task_definition=task,
            desired_count=cfg.service_min_tasks,
            min_healthy_percent=100,
            max_healthy_percent=200,
            vpc_subnets=self.private_subnets,
            security_groups=[self.services_sg],
            assign_public_ip=False,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            health_check_grace_period=Duration.seconds(60),
            cloud_map_options=ecs.CloudMapOptions(name=name.lower(), cloud_map_namespace=namespace),
            enable_execute_command=False,
        )
        tg = elbv2.ApplicationTargetGroup(
            self,
            f"{name}Targets",
            vpc=self.vpc,
            port=port,
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[service],
            deregistration_delay=Duration.seconds(30),
            health_check=elbv2.HealthCheck(
                path="/health",
                healthy_http_codes="200",
                interval=Duration.seconds(15),
                timeout=Duration.seconds(5),
                healthy_threshold_count=2,
                unhealthy_threshold_count=3,
            ),
        )
        return service, tg

    # --------------------------------------------------------------------- IAM
    def _objects(self, pattern: str) -> str:
        return self.bucket.arn_for_objects(pattern)

    def _grant_gallery(self, role: iam.Role) -> None:
        role.add_to_policy(
            iam.PolicyStatement(
                sid="MediaObjects",
                # Presigned PUT/POST/multipart uploads and GETs are signed with these
                # permissions; deletes are videos being deleted and unconfirmed uploads.
                actions=[
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                resources=[self._objects(f"{ORIGINALS_ROOT}*"), self._objects(f"{OUTPUTS_ROOT}*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="MediaListing",
                actions=["s3:ListBucket", "s3:ListBucketMultipartUploads"],
                resources=[self.bucket.bucket_arn],
            )
        )
        self.events_queue.grant_consume_messages(role)
        role.add_to_policy(
            iam.PolicyStatement(
                sid="QueueDepth",
                actions=["sqs:GetQueueAttributes"],
                resources=[self.jobs_queue.queue_arn, self.events_queue.queue_arn],
            )
        )

    def _grant_gateway(self, role: iam.Role) -> None:
        self.jobs_queue.grant_send_messages(role)
        role.add_to_policy(
            iam.PolicyStatement(
                sid="QueueDepth",
                actions=["sqs:GetQueueAttributes"],
                resources=[self.jobs_queue.queue_arn, self.events_queue.queue_arn],
            )
        )

    def _grant_worker(self, role: iam.Role) -> None:
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadOriginals",
                actions=["s3:GetObject"],
                resources=[self._objects(f"{ORIGINALS_ROOT}*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="StoreImportedOriginals",
                # Import-by-URL stores its download as originals/{user}/{id}/import.
                actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[self._objects(f"{ORIGINALS_ROOT}*/{IMPORT_NAME}*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOutputs",
                # Retried jobs overwrite their deterministic keys; the sweep removes
                # outputs of failed or deleted jobs.
                actions=[
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:AbortMultipartUpload",
                ],
                resources=[self._objects(f"{OUTPUTS_ROOT}*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ListOutputs",
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{OUTPUTS_ROOT}*"]}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="NeverDeleteOriginals",
                effect=iam.Effect.DENY,
                actions=["s3:DeleteObject", "s3:DeleteObjectVersion"],
                resources=[self._objects(f"{ORIGINALS_ROOT}*")],
            )
        )
        self.jobs_queue.grant_consume_messages(role)
        self.events_queue.grant_send_messages(role)
        self.db_secret.grant_read(role)
        self.jwt_secret.grant_read(role)
        role.add_to_policy(
            iam.PolicyStatement(
                sid="FindOwnGroup",
                actions=["autoscaling:DescribeAutoScalingInstances"],
                resources=["*"],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="CompleteScaleIn",
                actions=["autoscaling:CompleteLifecycleAction"],
                resources=["*"],
                conditions={"StringEquals": {"autoscaling:ResourceTag/videoforge:role": "worker"}},
            )
        )

    # ------------------------------------------------------------------ workers
    def _worker_user_data(self, package_install: list[str]) -> ec2.UserData:
        env = {
            **self._common_environment(),
            "MAX_CONCURRENT_JOBS": str(self.config.worker_concurrent_jobs),
            "FFMPEG_THREADS": "0",
            "SHUTDOWN_GRACE_SECONDS": str(WORKER_SHUTDOWN_GRACE_SECONDS),
            "METRICS_PORT": str(WORKER_METRICS_PORT),
            # Scraped from inside the VPC (workers_sg), not only from the instance.
            "METRICS_HOST": "0.0.0.0",
            "DB_SECRET_ARN": self.db_secret.secret_arn,
            "JWT_SECRET_ARN": self.jwt_secret.secret_arn,
            "LIFECYCLE_HOOK_NAME": LIFECYCLE_HOOK_NAME,
            # Traces to the CloudWatch agent on this instance (infra/tracing.py).
            "OTEL_EXPORTER_OTLP_ENDPOINT": OTLP_ENDPOINT,
            "OTEL_SERVICE_NAME": "videoforge-processor",
        }
        env_file = "\n".join(f"{key}={value}" for key, value in env.items())
        files = {
            "/etc/systemd/system/videoforge-worker.service": read_unit("videoforge-worker.service"),
            "/etc/systemd/system/videoforge-lifecycle.service": read_unit(
                "videoforge-lifecycle.service"
            ),
            "/opt/videoforge/bin/videoforge-secrets-env": read_unit("videoforge-secrets-env.py"),
            "/opt/videoforge/bin/videoforge-lifecycle": read_unit("videoforge-lifecycle.py"),
            "/etc/systemd/system/videoforge-journal-export.service": (
                WORKER_FILES_DIR / "videoforge-journal-export.service"
            ).read_text(encoding="utf-8"),
            "/etc/logrotate.d/videoforge-worker": (
                WORKER_FILES_DIR / "videoforge-worker.logrotate"
            ).read_text(encoding="utf-8"),
            "/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json": json.dumps(
                self._cloudwatch_agent_config(), indent=2
            )
            + "\n",
        }
        user_data = ec2.UserData.for_linux(shebang="#!/bin/bash")
        user_data.add_commands(
            "set -euxo pipefail",
            "export DEBIAN_FRONTEND=noninteractive",
            "apt-get update -q",
            "apt-get install -y -q --no-install-recommends "
            "ffmpeg python3-venv python3-pip unzip ca-certificates",
            "id videoforge >/dev/null 2>&1 || useradd --system --home-dir /var/lib/videoforge "
            "--create-home --shell /usr/sbin/nologin videoforge",
            "install -d -o videoforge -g videoforge -m 0750 /var/lib/videoforge "
            "/var/lib/videoforge/tmp",
            "install -d -m 0755 /opt/videoforge/bin /etc/videoforge",
            "python3 -m venv /opt/videoforge/venv",
            "/opt/videoforge/venv/bin/pip install -q --upgrade pip",
            *package_install,
        )
        for path, content in files.items():
            user_data.add_commands(f"cat > {path} <<'VIDEOFORGE_EOF'\n{content}VIDEOFORGE_EOF")
        user_data.add_commands(
            f"cat > /etc/videoforge/worker.env <<'VIDEOFORGE_EOF'\n{env_file}\nVIDEOFORGE_EOF",
            "chmod 0640 /etc/videoforge/worker.env",
            "chmod 0755 /opt/videoforge/bin/*",
            "systemctl daemon-reload",
            "systemctl enable --now videoforge-worker.service videoforge-lifecycle.service",
            # Logs and traces: the journal export, then the CloudWatch agent shipping both.
            "install -d -m 0755 /var/log/videoforge",
            "systemctl enable --now videoforge-journal-export.service",
            f"curl -fsSL -o /tmp/amazon-cloudwatch-agent.deb {CLOUDWATCH_AGENT_DEB}",
            "dpkg -i -E /tmp/amazon-cloudwatch-agent.deb",
            "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config "
            "-m ec2 -s -c file:/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json",
        )
        return user_data

    def _cloudwatch_agent_config(self) -> dict[str, object]:
        """The agent ships the worker's JSON log lines to its log group and relays the
        worker's OTLP traces (127.0.0.1:4318) to X-Ray."""
        return {
            "agent": {"run_as_user": "root"},
            "logs": {
                "logs_collected": {
                    "files": {
                        "collect_list": [
                            {
                                "file_path": WORKER_LOG_FILE,
                                "log_group_name": self.worker_logs.log_group_name,
                                "log_stream_name": "{instance_id}",
                                "retention_in_days": -1,
                            }
                        ]
                    }
                }
            },
            "traces": {
                "traces_collected": {
                    "otlp": {
                        "grpc_endpoint": "127.0.0.1:4317",
                        "http_endpoint": "127.0.0.1:4318",
                    }
                }
            },
        }

    def _package_install(self, role: iam.Role) -> list[str]:
        venv = "/opt/videoforge/venv/bin"
        if self.config.worker_package:
            return [f"{venv}/pip install -q '{self.config.worker_package}'"]
        source = s3_assets.Asset(
            self,
            "WorkerSource",
            path=str(REPO_ROOT),
            exclude=[
                ".git",
                ".venv",
                "node_modules",
                "data",
                "deploy/aws/cdk.out",
                "**/__pycache__",
                "*.egg-info",
                ".mypy_cache",
                ".pytest_cache",
                ".ruff_cache",
                "tests",
                "bench",
                "test-artifacts",
                # Never ship a developer's local secrets.
                ".env",
                ".env.*",
            ],
        )
        source.grant_read(role)
        return [
            f"{venv}/pip install -q boto3",
            f"{venv}/python -c \"import boto3; boto3.client('s3', region_name='{self.region}')"
            f".download_file('{source.s3_bucket_name}', '{source.s3_object_key}', "
            "'/opt/videoforge/source.zip')\"",
            "rm -rf /opt/videoforge/src && unzip -q /opt/videoforge/source.zip "
            "-d /opt/videoforge/src",
            # The lock pins versions; only the package's runtime dependencies install.
            f"{venv}/pip install -q --constraint /opt/videoforge/src/requirements.lock "
            "/opt/videoforge/src",
        ]

    def _workers(self) -> None:
        cfg = self.config
        self.worker_role = iam.Role(
            self,
            "WorkerRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description=(
                "VideoForge processor: reads originals, writes outputs, never deletes originals"
            ),
            managed_policies=[
                # Shell access through Session Manager instead of SSH keys.
                iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore"),
                # The CloudWatch agent: the worker's logs, and its traces to X-Ray.
                iam.ManagedPolicy.from_aws_managed_policy_name("CloudWatchAgentServerPolicy"),
                iam.ManagedPolicy.from_aws_managed_policy_name("AWSXRayDaemonWriteAccess"),
            ],
        )
        self.worker_logs = logs.LogGroup(
            self,
            "WorkerLogs",
            retention=cfg.log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self._grant_worker(self.worker_role)
        user_data = self._worker_user_data(self._package_install(self.worker_role))
        self.launch_template = ec2.LaunchTemplate(
            self,
            "WorkerLaunchTemplate",
            machine_image=ec2.MachineImage.from_ssm_parameter(UBUNTU_AMI_PARAMETER),
            instance_type=ec2.InstanceType(cfg.worker_instance_type),
            role=self.worker_role,
            security_group=self.workers_sg,
            user_data=user_data,
            require_imdsv2=True,
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/sda1",
                    volume=ec2.BlockDeviceVolume.ebs(
                        cfg.worker_volume_gib,
                        volume_type=ec2.EbsDeviceVolumeType.GP3,
                        encrypted=True,
                        delete_on_termination=True,
                    ),
                )
            ],
        )
        self.workers = autoscaling.AutoScalingGroup(
            self,
            "Workers",
            vpc=self.vpc,
            vpc_subnets=self.private_subnets,
            launch_template=self.launch_template,
            min_capacity=cfg.worker_min_instances,
            max_capacity=cfg.worker_max_instances,
            # GroupInServiceInstances feeds the backlog-per-instance metric.
            group_metrics=[autoscaling.GroupMetrics.all()],
            health_checks=autoscaling.HealthChecks.ec2(grace_period=Duration.minutes(10)),
            default_instance_warmup=Duration.minutes(5),
        )
        Tags.of(self.workers).add("videoforge:role", "worker")
        self.workers.add_lifecycle_hook(
            "GracefulScaleIn",
            lifecycle_hook_name=LIFECYCLE_HOOK_NAME,
            lifecycle_transition=autoscaling.LifecycleTransition.INSTANCE_TERMINATING,
            default_result=autoscaling.DefaultResult.CONTINUE,
            heartbeat_timeout=Duration.seconds(LIFECYCLE_HEARTBEAT_SECONDS),
        )
        self._worker_scaling()

    def _worker_scaling(self) -> None:
        group_name = self.workers.auto_scaling_group_name
        visible = autoscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty(
            id="visible",
            metric_stat=autoscaling.CfnScalingPolicy.TargetTrackingMetricStatProperty(
                metric=autoscaling.CfnScalingPolicy.MetricProperty(
                    namespace="AWS/SQS",
                    metric_name="ApproximateNumberOfMessagesVisible",
                    dimensions=[
                        autoscaling.CfnScalingPolicy.MetricDimensionProperty(
                            name="QueueName", value=self.jobs_queue.queue_name
                        )
                    ],
                ),
                stat="Sum",
            ),
            return_data=False,
        )
        in_service = autoscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty(
            id="instances",
            metric_stat=autoscaling.CfnScalingPolicy.TargetTrackingMetricStatProperty(
                metric=autoscaling.CfnScalingPolicy.MetricProperty(
                    namespace="AWS/AutoScaling",
                    metric_name="GroupInServiceInstances",
                    dimensions=[
                        autoscaling.CfnScalingPolicy.MetricDimensionProperty(
                            name="AutoScalingGroupName", value=group_name
                        )
                    ],
                ),
                stat="Average",
            ),
            return_data=False,
        )
        backlog = autoscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty(
            id="backlog_per_instance",
            # With no instance in service the whole backlog counts as one instance's.
            expression="IF(instances > 0, visible / instances, visible)",
            label="Jobs backlog per worker instance",
            return_data=True,
        )
        self.backlog_policy = autoscaling.CfnScalingPolicy(
            self,
            "WorkersBacklogTracking",
            auto_scaling_group_name=group_name,
            policy_type="TargetTrackingScaling",
            estimated_instance_warmup=300,
            target_tracking_configuration=autoscaling.CfnScalingPolicy.TargetTrackingConfigurationProperty(
                target_value=BACKLOG_PER_INSTANCE_TARGET,
                customized_metric_specification=autoscaling.CfnScalingPolicy.CustomizedMetricSpecificationProperty(
                    metrics=[visible, in_service, backlog]
                ),
            ),
        )
        # Target tracking alone never leaves zero for a backlog under the target (1
        # waiting job is below 5): add one instance whenever jobs wait and none runs.
        waiting_without_workers = cloudwatch.MathExpression(
            expression="IF(visible > 0 AND instances == 0, 1, 0)",
            using_metrics={
                "visible": self.jobs_queue.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(1), statistic="Maximum"
                ),
                "instances": cloudwatch.Metric(
                    namespace="AWS/AutoScaling",
                    metric_name="GroupInServiceInstances",
                    dimensions_map={"AutoScalingGroupName": group_name},
                    period=Duration.minutes(1),
                    statistic="Maximum",
                ),
            },
            period=Duration.minutes(1),
        )
        scale_from_zero = autoscaling.StepScalingAction(
            self,
            "WorkersScaleFromZero",
            auto_scaling_group=self.workers,
            adjustment_type=autoscaling.AdjustmentType.CHANGE_IN_CAPACITY,
        )
        scale_from_zero.add_adjustment(adjustment=1, lower_bound=0)
        alarm = waiting_without_workers.create_alarm(
            self,
            "JobsWaitingWithoutWorkers",
            alarm_description="Jobs are queued and no worker instance is in service",
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cw_actions.AutoScalingAction(scale_from_zero))

    # -------------------------------------------------------------------- sweep
    def _sweep(self) -> None:
        """``videoforge sweep`` every 15 minutes as a one-off Fargate task."""
        role = iam.Role(
            self,
            "SweepTaskRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="VideoForge sweep: unconfirmed uploads, stale outputs, stuck jobs",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="SweepObjects",
                actions=["s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                resources=[self._objects(f"{ORIGINALS_ROOT}*"), self._objects(f"{OUTPUTS_ROOT}*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="SweepListing",
                actions=["s3:ListBucket", "s3:ListBucketMultipartUploads"],
                resources=[self.bucket.bucket_arn],
            )
        )
        self.jobs_queue.grant_send_messages(role)
        role.add_to_policy(
            iam.PolicyStatement(
                sid="QueueDepth",
                actions=["sqs:GetQueueAttributes"],
                resources=[self.jobs_queue.queue_arn, self.events_queue.queue_arn],
            )
        )
        task = ecs.FargateTaskDefinition(
            self, "SweepTask", cpu=256, memory_limit_mib=512, task_role=role
        )
        task.add_container(
            "Sweep",
            image=self._image(),
            command=["sweep"],
            environment=self._common_environment(),
            secrets=self._secrets(),
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix="sweep",
                log_group=logs.LogGroup(
                    self,
                    "SweepLogs",
                    retention=self.config.log_retention,
                    removal_policy=RemovalPolicy.DESTROY,
                ),
            ),
        )
        events.Rule(
            self,
            "SweepSchedule",
            schedule=events.Schedule.rate(Duration.minutes(15)),
            targets=[
                targets.EcsTask(
                    cluster=self.cluster,
                    task_definition=task,
                    subnet_selection=self.private_subnets,
                    security_groups=[self.services_sg],
                )
            ],
        )
        self.sweep_task = task

    # ------------------------------------------------------------------ outputs
    def _outputs(self) -> None:
        CfnOutput(self, "Url", value=self.public_url, description="VideoForge web client")
        CfnOutput(self, "BucketName", value=self.bucket.bucket_name)
        CfnOutput(self, "JobsQueueUrl", value=self.jobs_queue.queue_url)
        CfnOutput(self, "JobsDlqUrl", value=self.jobs_dlq.queue_url)
        CfnOutput(self, "EventsQueueUrl", value=self.events_queue.queue_url)
        CfnOutput(self, "EventsDlqUrl", value=self.events_dlq.queue_url)
        CfnOutput(self, "UserPoolId", value=self.user_pool.user_pool_id)
        CfnOutput(self, "UserPoolClientId", value=self.user_pool_client.user_pool_client_id)
        CfnOutput(self, "DatabaseSecretArn", value=self.db_secret.secret_arn)
        CfnOutput(self, "MetricsTokenSecretArn", value=self.metrics_token.secret_arn)
        CfnOutput(self, "ClusterName", value=self.cluster.cluster_name)
        CfnOutput(self, "SweepTaskDefinition", value=self.sweep_task.task_definition_arn)
        CfnOutput(self, "WorkersGroupName", value=self.workers.auto_scaling_group_name)
        CfnOutput(self, "AlarmsTopicArn", value=self.alarms.topic_arn)
