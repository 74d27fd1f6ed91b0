#!/usr/bin/env python3
"""Graceful scale-in: stop the worker, then let the Auto Scaling Group terminate us.

Polls the instance metadata (IMDSv2) for the Auto Scaling target lifecycle state. When
it becomes ``Terminated`` the group is waiting on the lifecycle hook named in
``LIFECYCLE_HOOK_NAME``: stop ``videoforge-worker.service`` (systemd sends SIGTERM and
waits up to the unit's TimeoutStopSec, during which the worker finishes or requeues its
job), then complete the lifecycle action with CONTINUE.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request

import boto3

# The instance metadata service's fixed link-local address (never user input).
IMDS = "http://169.254.169.254/latest"
POLL_SECONDS = 5


def imds(path: str) -> str:
    token_request = urllib.request.Request(  # noqa: S310 - fixed IMDS URL
        f"{IMDS}/api/token",
        method="PUT",
        headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"},
    )
    with urllib.request.urlopen(token_request, timeout=2) as response:  # noqa: S310
        token = response.read().decode()
    request = urllib.request.Request(  # noqa: S310 - fixed IMDS URL
        f"{IMDS}/meta-data/{path}", headers={"X-aws-ec2-metadata-token": token}
    )
    with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
        body: bytes = response.read()
    return body.decode().strip()


def target_state() -> str | None:
    try:
        return imds("autoscaling/target-lifecycle-state")
    except OSError:
        return None


def main() -> None:
    hook = os.environ.get("LIFECYCLE_HOOK_NAME", "videoforge-graceful-scale-in")
    instance_id = imds("instance-id")
    region = os.environ.get("AWS_REGION")
    autoscaling = boto3.client("autoscaling", region_name=region)
    while target_state() != "Terminated":
        time.sleep(POLL_SECONDS)
    print("scale-in: stopping videoforge-worker", flush=True)
    subprocess.run(["systemctl", "stop", "videoforge-worker.service"], check=False)
    (described,) = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])[
        "AutoScalingInstances"
    ]
    autoscaling.complete_lifecycle_action(
        LifecycleHookName=hook,
        AutoScalingGroupName=described["AutoScalingGroupName"],
        InstanceId=instance_id,
        LifecycleActionResult="CONTINUE",
    )
    print("scale-in: lifecycle action completed", flush=True)


if __name__ == "__main__":
    main()
