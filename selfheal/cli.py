"""The `selfheal` command. Each subcommand imports its implementation lazily so `--help` is fast."""

from __future__ import annotations

import sys

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="selfheal-rollouts")
def main() -> None:
    """Self-healing rollouts: judge Argo Rollouts canaries and start the fix."""


@main.command()
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=str))
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="API server port on 127.0.0.1 (0 picks a free port).")
def sim(scenarios: tuple[str, ...], port: int) -> None:
    """Serve scenario folders as a Kubernetes API server (and Prometheus when installed).

    Prints one JSON line {"apiserver", "kubeconfig", "prometheus"} when ready and runs until
    SIGTERM/SIGINT. A scenario may be a folder path or the name of a bundled scenario.
    """
    from selfheal.simulator.cli import run_simulator

    sys.exit(run_simulator(list(scenarios), port))


if __name__ == "__main__":
    main()
