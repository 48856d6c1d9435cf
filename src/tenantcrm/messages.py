"""Marks English msgids for catalog extraction; they are translated where they are shown."""


def N_(message: str) -> str:
    return message
