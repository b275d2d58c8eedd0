"""The long-running service: the clock, live reload, systemd, status, logs and progress.

Only this package and `watcher.cli` read the environment or install signal handlers.
"""
