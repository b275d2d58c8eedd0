"""The command line: the only place that parses argv and picks exit codes."""

from watcher.cli.main import main

__all__ = ["main"]
