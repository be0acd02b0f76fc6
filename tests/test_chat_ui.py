"""`adk run` and `adk web` as a new user runs them: real processes against the simulator, and the
web UI driven in headless Chromium (Debian's `chromium`, through Playwright)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from selfheal.simulator import SimulatedCluster, free_port

ROOT = Path(__file__).resolve().parents[1]
ADK = str(Path(sys.executable).with_name("adk"))
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _env(cluster: SimulatedCluster, tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GITHUB_TOKEN", "SELFHEAL_MODEL")}
    env.update(cluster.environment())
    env.update({"SELFHEAL_STATE_DIR": str(tmp_path / "state"), "ADK_SUPPRESS_EXPERIMENTAL_FEATURE_WARNINGS": "true",
                "ADK_DISABLE_LOAD_DOTENV": "1", "HOME": str(tmp_path)})
    return env


@pytest.fixture(scope="module")
def bad_canary_cluster():
    with SimulatedCluster(["bad-canary"]) as cluster:
        yield cluster


def test_adk_run_answers_a_question_from_stdin(bad_canary_cluster, tmp_path) -> None:
    # No model configured and no credentials: the runbook model is chosen automatically.
    result = subprocess.run(
        [ADK, "run", "agents/rollout_doctor"],
        input="is the canary of canary-demo healthy?\nexit\n",
        cwd=ROOT, env=_env(bad_canary_cluster, tmp_path), capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout
    assert "[diagnosis]" in output
    assert '"promote": false' in output
    assert "HTTP 500" in output


@pytest.fixture(scope="module")
def adk_web(bad_canary_cluster, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("adk-web")
    port = free_port()
    log = open(tmp_path / "adk-web.log", "w")
    process = subprocess.Popen(
        [ADK, "web", "--host", "127.0.0.1", "--port", str(port), "--no-reload", "agents"],
        cwd=ROOT, env=_env(bad_canary_cluster, tmp_path), stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/list-apps", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
            if process.poll() is not None:
                raise AssertionError((tmp_path / "adk-web.log").read_text()[-3000:])
        else:
            raise AssertionError("adk web did not start: " + (tmp_path / "adk-web.log").read_text()[-3000:])
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_adk_web_lists_only_the_app(adk_web) -> None:
    assert httpx.get(f"{adk_web}/list-apps").json() == ["rollout_doctor"]


def test_adk_web_in_a_real_browser(adk_web) -> None:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "Debian chromium is not installed (scripts/test.sh installs it)"

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{adk_web}/dev-ui/", wait_until="networkidle")
            decline = page.get_by_role("button", name="No Thanks")  # ADK's telemetry opt-in dialog
            if decline.count():
                decline.click()
            # Pick the app as a new user would (it is the only one, so the UI may preselect it).
            picker = page.get_by_text("rollout_doctor").first
            picker.wait_for(timeout=30_000)
            box = page.locator("textarea")
            box.fill("is the canary of canary-demo healthy?")
            box.press("Enter")
            page.wait_for_function(
                "() => document.body.innerText.includes('\"promote\": false')", timeout=90_000)
            page.wait_for_timeout(500)
            page.screenshot(path=str(ARTIFACTS / "adk-web-verdict.png"), full_page=True)
            text = page.inner_text("body")
        finally:
            browser.close()
    assert "get_canary_evidence" in text
    assert "HTTP 500" in text
    assert (ARTIFACTS / "adk-web-verdict.png").stat().st_size > 10_000
