"""One module per ``emoeye`` subcommand; each has ``register(subparsers)`` that adds its parser
and sets ``func``."""
