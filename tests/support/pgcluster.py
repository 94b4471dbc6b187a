"""A throwaway PostgreSQL cluster (initdb in a temp dir), for what only a second server shows:
a restore onto a machine whose transaction counter starts from scratch."""

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import free_port


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise RuntimeError(
            "no PostgreSQL server binaries under /usr/lib/postgresql (scripts/services.sh installs them)"
        )
    return found[-1].parent


@dataclass
class PgCluster:
    directory: Path
    port: int

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def url(self, database: str) -> str:
        return f"postgres://chat:chat@127.0.0.1:{self.port}/{database}"

    def _as_owner(self, *argv: str) -> None:
        # initdb and pg_ctl refuse to run as root: use the postgres user then, as scripts/services.sh does.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *argv], check=True, capture_output=True, cwd="/")

    def start(self) -> None:
        self._as_owner(
            str(_pg_bin() / "pg_ctl"), "start", "-w", "-D", str(self.data), "-l", str(self.directory / "log"),
            "-o", f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off",
        )  # fmt: skip

    def stop(self) -> None:
        self._as_owner(str(_pg_bin() / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.data))

    def resetwal_epoch(self, epoch: int) -> None:
        """What restore.sh asks for on a fresh cluster (the cluster must be stopped)."""
        self._as_owner(str(_pg_bin() / "pg_resetwal"), f"--epoch={epoch}", str(self.data))

    @classmethod
    def create(cls) -> "PgCluster":
        directory = Path(tempfile.mkdtemp(prefix="chat-pg-"))
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
        cluster = cls(directory=directory, port=free_port())
        cluster._as_owner(
            str(_pg_bin() / "initdb"), "--no-sync", "-A", "trust", "-U", "postgres", "-D", str(cluster.data)
        )
        cluster.start()
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "-d", "postgres", "-qc",
             "CREATE ROLE chat LOGIN SUPERUSER PASSWORD 'chat'"],
            check=True, capture_output=True,
        )  # fmt: skip
        return cluster

    def destroy(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
