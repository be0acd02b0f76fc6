"""The HTTP service behind `selfheal serve`."""
