"""Refused input, shared by every capability: which field, a code, an English msgid."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One refused field. `message` is an English msgid the web layer translates."""

    field: str
    code: str
    message: str


class InvalidInput(Exception):
    """Input refused as a whole; nothing was written."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors

    def for_field(self, field: str) -> FieldError | None:
        return next((e for e in self.errors if e.field == field), None)
