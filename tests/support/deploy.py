"""The shipped deployment files (deploy/), read the way systemd reads them, for tests."""

import os
import secrets
from pathlib import Path

from tests.support.servers import ROOT

DEPLOY = ROOT / "deploy"
ENV_EXAMPLE = DEPLOY / "chat.env.example"


def env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """KEY=VALUE lines (systemd's EnvironmentFile=): comments and blank lines skipped."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def production_env(**overrides: str) -> dict[str, str]:
    """This process's environment without its DJANGO_* settings, plus the example env file
    with a freshly generated secret key (the one value the example leaves empty)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(env_file())
    env["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
    env.update(overrides)
    return env
