"""The package version (one place; ``simulator.__version__`` re-exports it)."""

__version__ = "0.1.0"
