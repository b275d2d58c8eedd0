"""`${ENV}` and `${credential:NAME}` substitution in channel URLs; problems name variables, never values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def substitute_env(text: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """Replace ${VAR}; return the text and the names that were not set (never their values)."""
    missing: list[str] = []

    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            missing.append(name)
            return ""
        return environ[name]

    return _ENV_RE.sub(repl, text), missing


_CREDENTIAL_RE = re.compile(r"\$\{credential:([A-Za-z0-9_.@-]+)\}")


def substitute_credentials(text: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """Replace ${credential:NAME} with the file $CREDENTIALS_DIRECTORY/NAME (systemd's LoadCredential=).

    Returns the text and the problems; a problem names the credential, never its content.
    """
    problems: list[str] = []
    directory = environ.get("CREDENTIALS_DIRECTORY")

    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if not directory:
            problems.append(
                f"credential {name!r}: $CREDENTIALS_DIRECTORY is not set "
                f"(run under systemd with LoadCredential={name}:/path/to/file)"
            )
            return ""
        try:
            return (Path(directory) / name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            problems.append(
                f"credential {name!r}: cannot read it from $CREDENTIALS_DIRECTORY: {exc.strerror or type(exc).__name__}"
            )
            return ""

    return _CREDENTIAL_RE.sub(repl, text), problems
