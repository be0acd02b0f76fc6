"""A real Prometheus (Debian `prometheus` + `promtool`) backfilled with scenario metrics.

Backfill happens before the server starts: a block copied into a running server only shows
up after about a minute. Retention is 10 years because Prometheus counts retention from the
newest block, and a short one would delete backfilled data at startup.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from .scenario import ScenarioError

_CONFIG = "global:\n  scrape_interval: 15s\nscrape_configs: []\n"
# Loopback only: never route the readiness probe through an http_proxy from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class PrometheusError(RuntimeError):
    """Prometheus did not start; the message holds the end of its log."""


def missing_binaries() -> str | None:
    """Why Prometheus cannot run here (one line), or None when both binaries are on PATH."""
    missing = [name for name in ("prometheus", "promtool") if shutil.which(name) is None]
    if missing:
        return (f"{' and '.join(missing)} not found on PATH; serving without metrics "
                "(install the Debian package 'prometheus')")
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrometheusServer:
    """Backfills OpenMetrics texts into a TSDB under `workdir` and serves it on loopback."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.data = workdir / "data"
        self.url: str | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._log = workdir / "prometheus.log"

    def backfill(self, files: list[tuple[Path, str]]) -> None:
        """Write each (source, shifted text) as .om and turn it into TSDB blocks."""
        self.data.mkdir(parents=True, exist_ok=True)
        for index, (source, text) in enumerate(files):
            target = self.workdir / f"{index:03d}-{source.name}"
            target.write_text(text, encoding="utf-8")
            result = subprocess.run(
                ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(target), str(self.data)],
                capture_output=True, text=True, timeout=300, check=False)
            if result.returncode != 0:
                detail = (result.stderr or result.stdout).strip().splitlines()
                raise ScenarioError(f"{source}: promtool rejected the metrics: "
                                    f"{detail[-1] if detail else f'exit code {result.returncode}'}")

    def start(self, timeout: float = 30.0, attempts: int = 3) -> str:
        config = self.workdir / "prometheus.yml"
        config.write_text(_CONFIG, encoding="utf-8")
        for _ in range(attempts):
            port = free_port()
            with self._log.open("wb") as log:
                self.process = subprocess.Popen(
                    ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={self.data}",
                     "--storage.tsdb.retention.time=10y", f"--web.listen-address=127.0.0.1:{port}",
                     "--log.level=warn"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            url = f"http://127.0.0.1:{port}"
            if self._wait_ready(url, timeout):
                self.url = url
                return url
            self.stop()
            if "address already in use" not in self._log_tail():
                break
        raise PrometheusError(f"prometheus did not become ready: {self._log_tail()}")

    def _wait_ready(self, url: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                with _DIRECT.open(f"{url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        return False

    def _log_tail(self) -> str:
        try:
            lines = self._log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return lines[-1] if lines else "(empty log)"

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
