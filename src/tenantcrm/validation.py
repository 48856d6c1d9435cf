"""Refused input, shared by every capability: which field, a code, an English msgid."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class FieldError:
    """One refused field. `message` is an English msgid the web layer translates."""

    field: str
    code: str
    message: str
    params: Mapping[str, str] | None = field(default=None, compare=False)

    def text(self, gettext: Callable[[str], str] = str) -> str:
        """The message in the caller's language, its {placeholders} filled in."""
        translated = gettext(self.message)
        return translated.format(**self.params) if self.params else translated


class InvalidInput(Exception):
    """Input refused as a whole; nothing was written."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors

    def for_field(self, field: str) -> FieldError | None:
        return next((e for e in self.errors if e.field == field), None)


def parse_uuid(value: object) -> uuid.UUID | None:
    """An id from a URL, form or API argument; None for anything that is not one."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
