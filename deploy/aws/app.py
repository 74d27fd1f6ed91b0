#!/usr/bin/env python3
"""The CDK app: ``cdk deploy`` (from deploy/aws) synthesises and deploys VideoForge.

Context values (``cdk deploy -c key=value``) choose what the defaults leave open:

- ``image``: a container image URI for the services (default: build the repository's
  Dockerfile as an asset; needs Docker where ``cdk`` runs);
- ``workerPackage``: what the worker instances ``pip install`` (default: this source
  tree, uploaded as an S3 asset);
- ``corsOrigins``: comma-separated browser origins (default: the load balancer's URL);
- ``certificateArn``: an ACM certificate for HTTPS;
- ``publicUrl``: the URL users open (a DNS name you point at the load balancer);
- ``alarmEmail``: where DLQ alarms are sent;
- ``retainData``: ``false`` to let ``cdk destroy`` delete the bucket, database and
  user pool (test deployments only).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import aws_cdk as cdk

sys.path.insert(0, str(Path(__file__).resolve().parent))

from videoforge_stack import VideoForgeConfig, VideoForgeStack


def config_from_context(app: cdk.App) -> VideoForgeConfig:
    """Build the deployment config from ``-c`` context values."""

    def ctx(name: str) -> str | None:
        value = app.node.try_get_context(name)
        return str(value) if value not in (None, "") else None

    origins = ctx("corsOrigins")
    return VideoForgeConfig(
        image=ctx("image"),
        worker_package=ctx("workerPackage"),
        cors_origins=tuple(o.strip() for o in origins.split(",") if o.strip()) if origins else (),
        certificate_arn=ctx("certificateArn"),
        public_url=ctx("publicUrl"),
        alarm_email=ctx("alarmEmail"),
        retain_data=(ctx("retainData") or "true").lower() != "false",
    )


def main() -> None:
    app = cdk.App()
    env = None
    if os.environ.get("CDK_DEFAULT_ACCOUNT"):
        env = cdk.Environment(
            account=os.environ["CDK_DEFAULT_ACCOUNT"], region=os.environ.get("CDK_DEFAULT_REGION")
        )
    VideoForgeStack(app, "VideoForge", config=config_from_context(app), env=env)
    app.synth()


if __name__ == "__main__":
    main()
