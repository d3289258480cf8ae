"""The command-line subcommands (registered in fastconv/cli.py)."""
