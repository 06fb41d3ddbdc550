"""A throwaway PostgreSQL cluster on 127.0.0.1, for the tests and the benchmarks.

``initdb`` into a temporary folder and ``pg_ctl start`` on a free port; as root (CI), both
run as the ``postgres`` user, since PostgreSQL refuses to run as root. The binaries are found
on PATH or where the Debian packages put them (``/usr/lib/postgresql/N/bin``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["MISSING", "PostgresCluster", "find_binaries", "throwaway_cluster"]

MISSING = (
    "PostgreSQL is not installed (no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin): "
    "install it with `apt-get install -y postgresql` (Debian/Ubuntu; `.ci/run` does this) "
    "and run the tests again"
)


def find_binaries() -> tuple[str, str] | None:
    """``initdb`` and ``pg_ctl``, from PATH or the newest Debian cluster version."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return initdb, pg_ctl
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(f"{folder}/initdb", os.X_OK) and os.access(f"{folder}/pg_ctl", os.X_OK):
            return f"{folder}/initdb", f"{folder}/pg_ctl"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    """A running cluster: :attr:`url` reaches its ``postgres`` database as the superuser
    ``orchestrator`` (trust authentication, 127.0.0.1 only)."""

    def __init__(self, root: Path, port: int, prefix: list[str], pg_ctl: str) -> None:
        self.root, self.port, self._prefix, self._pg_ctl = root, port, prefix, pg_ctl
        self.url = f"postgresql://orchestrator@127.0.0.1:{port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgresql://orchestrator@127.0.0.1:{self.port}/{name}"

    def new_database(self, prefix: str = "t") -> str:
        """A fresh empty database; returns its URL."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def stop(self) -> None:
        subprocess.run(
            [*self._prefix, self._pg_ctl, "-D", str(self.root / "data"), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
        )


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[PostgresCluster]:
    """Start a cluster and remove it afterwards; RuntimeError (saying how to install
    PostgreSQL) when the binaries are missing, or with the server's log when it fails."""
    found = find_binaries()
    if found is None:
        raise RuntimeError(MISSING)
    initdb, pg_ctl = found
    root = Path(tempfile.mkdtemp(prefix="orchestrator-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            raise RuntimeError("running as root needs runuser (util-linux) to start PostgreSQL")
        for path in (root, sock):
            shutil.chown(path, "postgres")
        prefix = [runuser, "-u", "postgres", "--"]
    cluster = PostgresCluster(root, _free_port(), prefix, pg_ctl)
    try:
        subprocess.run(
            [*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "orchestrator", "-E", "UTF8"],
            check=True,
            capture_output=True,
            text=True,
        )
        options = (
            f"-h 127.0.0.1 -p {cluster.port} -k {sock} -c max_connections=300 "
            "-c shared_buffers=32MB"
        )
        subprocess.run(
            [
                *prefix,
                pg_ctl,
                "-D",
                str(data),
                "-l",
                str(root / "log"),
                "-w",
                "-o",
                options,
                "start",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as exc:
        log = root / "log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}\n{tail}") from None
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
