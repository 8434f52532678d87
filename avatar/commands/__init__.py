"""One module per ``avatar`` subcommand, each with ``register(subparsers)``."""
