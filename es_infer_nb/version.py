"""The package version (one place: the package, ``es-infer --version`` and the server's banner read it)."""

__version__ = "0.1.0"
