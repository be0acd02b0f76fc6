"""A throwaway PostgreSQL server for tests (Debian's binaries, run as the `postgres` user)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from selfheal.simulator import free_port


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for version in ("17", "16", "15", "14", "13"):
        candidate = Path(f"/usr/lib/postgresql/{version}/bin/{name}")
        if candidate.exists():
            return str(candidate)
    return None


@dataclass
class Postgres:
    root: Path
    port: int
    pg_ctl: str

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://app@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)

    @classmethod
    def start(cls) -> "Postgres":
        initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
        if not initdb or not pg_ctl:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) are missing: install postgresql")
        root = Path(tempfile.mkdtemp(prefix="selfheal-pg-"))
        data = root / "data"
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        server = cls(root=root, port=free_port(), pg_ctl=pg_ctl)
        subprocess.run(server._as_postgres(initdb, "-D", str(data), "-U", "app", "--auth=trust", "--no-sync",
                                           "-E", "UTF8", "--locale=C.UTF-8"),
                       check=True, capture_output=True, timeout=120)
        options = f"-c listen_addresses=127.0.0.1 -p {server.port} -k {root} -c fsync=off -c max_connections=200"
        subprocess.run(server._as_postgres(pg_ctl, "-D", str(data), "-l", str(root / "log"), "-w", "-o", options,
                                           "start"), check=True, capture_output=True, timeout=120)
        return server

    def stop(self) -> None:
        subprocess.run(self._as_postgres(self.pg_ctl, "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop"),
                       capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)
