"""Generate every scenario folder of evals/scenarios/ (deterministic: same bytes on every run).

    python -m evals.scenarios._build.build              # rewrite evals/scenarios/<name>/
    python -m evals.scenarios._build.build --out DIR    # write elsewhere (tests compare the two)
    python -m evals.scenarios._build.build bad-canary   # only some scenarios

Each scenario is one function returning a `Scenario`; the generated folders are committed, so never
edit them by hand: change the generator and run it again.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

from .base import Scenario
from .scenarios_apps import injection_canary, noisy_but_healthy, panic_canary
from .scenarios_crash import config_error_canary, crashloop_canary
from .scenarios_demo import bad_canary, healthy_canary, imagepull_canary, low_traffic_canary, slow_canary
from .scenarios_large import large_logs

SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "healthy-canary": healthy_canary,
    "bad-canary": bad_canary,
    "crashloop-canary": crashloop_canary,
    "slow-canary": slow_canary,
    "panic-canary": panic_canary,
    "config-error-canary": config_error_canary,
    "imagepull-canary": imagepull_canary,
    "noisy-but-healthy": noisy_but_healthy,
    "low-traffic-canary": low_traffic_canary,
    "large-logs": large_logs,
    "injection-canary": injection_canary,
}

ROOT = Path(__file__).resolve().parents[1]


def build(out: Path = ROOT, names: list[str] | None = None, verbose: bool = False) -> list[str]:
    """Write the named scenarios (default: all) under `out`; returns the names written."""
    chosen = names or list(SCENARIOS)
    unknown = [n for n in chosen if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    out.mkdir(parents=True, exist_ok=True)
    for name in chosen:
        started = time.monotonic()
        scenario = SCENARIOS[name]()
        assert scenario.name == name, (scenario.name, name)
        scenario.write(out)
        if verbose:
            print(f"{name}: {time.monotonic() - started:.1f}s", file=sys.stderr)
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="scenario names (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT, help=f"output folder (default: {ROOT})")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    build(args.out, args.names or None, verbose=not args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
