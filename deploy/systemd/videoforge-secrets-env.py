#!/usr/bin/env python3
"""Write the worker's secrets from AWS Secrets Manager into a systemd environment file.

Reads ``DB_SECRET_ARN`` (the RDS-generated JSON secret: username, password, host, port,
dbname) and ``JWT_SECRET_ARN`` (a plain string) from the environment, and writes
``DB_USER``, ``DB_PASSWORD`` and ``JWT_SECRET`` to the path given as the only argument,
readable by root only (systemd reads it before dropping privileges).
"""

from __future__ import annotations

import json
import os
import sys

import boto3


def quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def main(path: str) -> None:
    values: dict[str, str] = {}
    db_arn = os.environ.get("DB_SECRET_ARN")
    jwt_arn = os.environ.get("JWT_SECRET_ARN")
    # Off AWS (bare metal) neither is set: write an empty file, ask nothing.
    client = (
        boto3.client("secretsmanager", region_name=os.environ.get("AWS_REGION"))
        if db_arn or jwt_arn
        else None
    )
    if client is not None and db_arn:
        db = json.loads(client.get_secret_value(SecretId=db_arn)["SecretString"])
        values["DB_USER"] = db["username"]
        values["DB_PASSWORD"] = db["password"]
    if client is not None and jwt_arn:
        values["JWT_SECRET"] = client.get_secret_value(SecretId=jwt_arn)["SecretString"]
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        for key, value in values.items():
            out.write(f"{key}={quote(value)}\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: videoforge-secrets-env PATH")
    main(sys.argv[1])
