"""systemd units verified by systemd itself, and the worker's helper scripts run for real."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

REPO = Path(__file__).resolve().parents[2]
SYSTEMD = REPO / "deploy" / "systemd"
UNITS = sorted(p.name for p in SYSTEMD.iterdir() if p.suffix in {".service", ".timer"})


def _system_units() -> Path:
    for candidate in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")):
        if (candidate / "sysinit.target").exists():
            return candidate
    raise AssertionError("systemd's own units are missing (apt-get install systemd)")


@pytest.fixture
def unit_root(tmp_path: Path) -> Path:
    """A root directory with systemd's targets, our units, and stand-in executables at the
    paths the units run (verify checks that they exist and are executable)."""
    root = tmp_path / "root"
    shutil.copytree(_system_units(), root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    for name in UNITS:
        shutil.copy(SYSTEMD / name, root / "etc/systemd/system" / name)
    bin_dir = root / "opt/videoforge/venv/bin"
    bin_dir.mkdir(parents=True)
    for exe in ("python", "videoforge"):
        (bin_dir / exe).write_text("#!/bin/sh\n")
        (bin_dir / exe).chmod(0o755)
    return root


def _verify(root: Path, *units: str) -> subprocess.CompletedProcess[str]:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is part of Debian's systemd package"
    return subprocess.run(
        [analyze, "verify", "--man=no", f"--root={root}", *units],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_units_verify_cleanly(unit_root: Path) -> None:
    assert {"videoforge-worker.service", "videoforge-lifecycle.service"} <= set(UNITS)
    result = _verify(unit_root, *UNITS)
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


def test_verify_reports_a_broken_unit(unit_root: Path) -> None:
    broken = (
        (SYSTEMD / "videoforge-worker.service")
        .read_text()
        .replace("TimeoutStopSec=660", "TimeoutStopSec=eleven minutes")
    )
    (unit_root / "etc/systemd/system/broken.service").write_text(broken)
    result = _verify(unit_root, "broken.service")
    assert "TimeoutStopSec" in result.stderr or "time value" in result.stderr


AWS_WORKER = REPO / "deploy" / "aws" / "worker"


def test_the_aws_workers_journal_export_unit_verifies(unit_root: Path) -> None:
    """The unit the AWS stack adds to each worker (for the CloudWatch agent)."""
    unit = "videoforge-journal-export.service"
    shutil.copy(AWS_WORKER / unit, unit_root / "etc/systemd/system" / unit)
    (unit_root / "bin").mkdir(exist_ok=True)
    (unit_root / "bin/sh").write_text("#!/bin/sh\n")
    (unit_root / "bin/sh").chmod(0o755)
    result = _verify(unit_root, unit)
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""
    text = (AWS_WORKER / unit).read_text()
    assert "--follow --no-tail --boot" in text
    assert "--cursor-file=/var/lib/videoforge-journal-export/cursor" in text
    assert "StateDirectory=videoforge-journal-export" in text


def test_the_aws_workers_log_rotation_is_valid(tmp_path: Path) -> None:
    """logrotate itself runs the stack's configuration on a stand-in file: rotated by
    copy and truncation (the exporter keeps the file open)."""
    log_file = tmp_path / "worker.log"
    log_file.write_text("{}\n" * 10)
    config = (AWS_WORKER / "videoforge-worker.logrotate").read_text()
    assert "/var/log/videoforge/worker.log {" in config
    (tmp_path / "rotate.conf").write_text(
        config.replace("/var/log/videoforge/worker.log", str(log_file))
    )
    logrotate = shutil.which("logrotate") or "/usr/sbin/logrotate"
    result = subprocess.run(
        [logrotate, "--force", "--state", str(tmp_path / "state"), str(tmp_path / "rotate.conf")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert log_file.read_text() == ""  # truncated in place
    assert (tmp_path / "worker.log.1.gz").exists() or (tmp_path / "worker.log.1").exists()


def test_worker_unit_stops_gracefully() -> None:
    unit = (SYSTEMD / "videoforge-worker.service").read_text()
    assert "ExecStart=/opt/videoforge/venv/bin/videoforge worker" in unit
    assert "KillSignal=SIGTERM" in unit
    assert "KillMode=mixed" in unit
    assert "User=videoforge" in unit
    env = (SYSTEMD / "videoforge-lifecycle.py").read_text()
    assert "videoforge-graceful-scale-in" in env


def _run_secrets_env(env: dict[str, str], out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SYSTEMD / "videoforge-secrets-env.py"), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _parse_env_file(text: str) -> dict[str, str]:
    """systemd's EnvironmentFile= rules for double-quoted values (backslash escapes)."""
    values = {}
    for line in text.splitlines():
        key, _, raw = line.partition("=")
        assert raw.startswith('"')
        assert raw.endswith('"')
        body, out, i = raw[1:-1], [], 0
        while i < len(body):
            if body[i] == "\\" and i + 1 < len(body):
                out.append(body[i + 1])
                i += 2
            else:
                assert body[i] != '"', "unescaped quote"
                out.append(body[i])
                i += 1
        values[key] = "".join(out)
    return values


def test_secrets_env_writes_secrets_from_secrets_manager(
    moto_endpoint: str, unique: str, tmp_path: Path
) -> None:
    client = boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name="us-east-1")
    password = 'p"a$s\\w0rd'
    db_arn = client.create_secret(
        Name=f"db-{unique}",
        SecretString=json.dumps({"username": "videoforge", "password": password, "host": "db"}),
    )["ARN"]
    jwt_arn = client.create_secret(Name=f"jwt-{unique}", SecretString="j" * 64)["ARN"]
    out = tmp_path / "secrets.env"
    env = {
        "PATH": os.environ["PATH"],
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "DB_SECRET_ARN": db_arn,
        "JWT_SECRET_ARN": jwt_arn,
    }
    result = _run_secrets_env(env, out)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert _parse_env_file(out.read_text()) == {
        "DB_USER": "videoforge",
        "DB_PASSWORD": password,
        "JWT_SECRET": "j" * 64,
    }


def test_secrets_env_off_aws_writes_an_empty_file(tmp_path: Path) -> None:
    out = tmp_path / "secrets.env"
    result = _run_secrets_env({"PATH": os.environ["PATH"]}, out)
    assert result.returncode == 0, result.stderr
    assert out.read_text() == ""
