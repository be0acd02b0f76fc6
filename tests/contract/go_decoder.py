"""Builds tests/contract/decode.go once and decodes plugin answers with it (the Go client's rules)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


class GoDecoder:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.binary = workdir / "decode"

    @classmethod
    def build(cls, workdir: Path) -> "GoDecoder":
        go = shutil.which("go")
        if go is None:
            raise RuntimeError("the Go toolchain is missing: install the Debian package golang-go (scripts/test.sh does)")
        env = dict(os.environ, GOPROXY="off", GOFLAGS="-mod=mod", GOCACHE=str(workdir / "gocache"),
                   GOPATH=str(workdir / "gopath"), CGO_ENABLED="0")
        subprocess.run([go, "build", "-o", str(workdir / "decode"), "."], cwd=HERE, env=env, check=True,
                       capture_output=True, timeout=300)
        return cls(workdir)

    def decode(self, bodies: list[str | bytes | dict]) -> list[dict]:
        """Decode each body; returns [{"ok", "error", "promote", "confidence", "models"}] in order."""
        with tempfile.TemporaryDirectory(dir=self.workdir) as tmp:
            paths = []
            for index, body in enumerate(bodies):
                path = Path(tmp) / f"answer-{index}.json"
                if isinstance(body, dict):
                    body = json.dumps(body)
                path.write_bytes(body if isinstance(body, bytes) else body.encode())
                paths.append(str(path))
            output = subprocess.run([str(self.binary), *paths], capture_output=True, text=True, check=True, timeout=60)
        return [json.loads(line) for line in output.stdout.splitlines()]
