"""Errors the CLI shows as one clear line."""


class CliError(Exception):
    """An error to show the user as one clear line (no traceback)."""
