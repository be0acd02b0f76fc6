"""Self-healing rollouts: judge Argo Rollouts canaries from evidence and start the fix."""

__version__ = "0.1.0"
