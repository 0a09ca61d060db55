"""EmoEye Live: the application shell (CLI, configuration, session wiring)."""

__version__ = "0.1.0"
