from . import agent  # noqa: F401  (adk eval imports the app through the package)
