"""Secrets (API keys, webhook URLs with tokens): read from the environment or a TOML secrets
file, and kept out of everything a run writes or prints.

Secrets are never config keys; the config names them (`webhooks: [SLACK_WEBHOOK_URL]`) and this
module looks the names up when the sinks are built, so config.json, events.jsonl, the outbox and
MLflow parameters only ever hold the names.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from inspect_tinker.errors import UsageError

REDACTED = "***"


class Secrets:
    """Looks names up in the environment first, then in the secrets file; remembers every value
    it handed out so that `redact` can scrub them from text about to be recorded."""

    def __init__(self, file: Path | None = None):
        self.file = file
        self._from_file = _read_secrets_file(file) if file is not None else {}
        self._handed_out: set[str] = set()

    def get(self, name: str, *, redact: bool = True) -> str | None:
        """The value of `name`, or None when neither the environment nor the file has it.

        `redact=False` is for settings kept beside the secrets that are not secret (a service URL).
        """
        value = os.environ.get(name) or self._from_file.get(name)
        if value and redact:
            self._handed_out.add(value)
        return value or None

    def require(self, name: str, needed_for: str) -> str:
        """The value of secret `name`; a UsageError saying where to put it when it is missing."""
        value = self.get(name)
        if value is None:
            where = f"or add {name} = \"...\" to the secrets file {self.file}" if self.file else (
                f"or name a TOML secrets file holding {name} in the config key secrets_file"
            )
            raise UsageError(f"{needed_for} needs the secret {name}: export {name}=... in the environment, {where}.")
        return value

    def redact(self, text: str) -> str:
        """`text` with every secret value this object handed out replaced by ***."""
        for value in sorted(self._handed_out, key=len, reverse=True):
            text = text.replace(value, REDACTED)
        return text


def _read_secrets_file(path: Path) -> dict[str, str]:
    # Messages name the file and the key, never a value.
    if not path.is_file():
        raise UsageError(f"secrets_file {path} does not exist; create it (KEY = \"value\" lines, TOML) or remove the key.")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"secrets_file {path} is not valid TOML: {err}; write one KEY = \"value\" per line.") from None
    for key, value in data.items():
        if not isinstance(value, str):
            raise UsageError(f"secrets_file {path}: {key} must be a string (KEY = \"value\").")
    return data
