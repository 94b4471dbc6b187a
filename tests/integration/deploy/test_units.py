"""The systemd units of deploy/systemd parse cleanly (systemd-analyze verify)."""

import shutil
import subprocess

from tests.support.deploy import DEPLOY
from tests.support.servers import ROOT


def test_units_verify_without_a_complaint(tmp_path):
    # As installed, with the venv this checkout runs (the units name /srv/chat/venv).
    for unit in (DEPLOY / "systemd").iterdir():
        text = unit.read_text().replace("/srv/chat/venv/", f"{ROOT}/.venv/")
        (tmp_path / unit.name).write_text(text)
    shutil.copy(tmp_path / "chat-daphne@.service", tmp_path / "chat-daphne@8001.service")
    units = ["chat-daphne@8001.service", "chat-worker.service", "chat-beat.service", "chat.target"]
    result = subprocess.run(
        ["systemd-analyze", "verify", *(f"./{u}" for u in units)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Unknown keys and bad values are only warnings (exit 0): any output is a finding.
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr
