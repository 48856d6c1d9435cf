"""The committed SDL (graphql/schema.graphql) is exactly what the code exports."""

from __future__ import annotations

import difflib

from tenantcrm.graphql.schema import SDL_PATH, export_sdl

REGENERATE = ".venv/bin/tenantcrm graphql-schema --write"


def test_committed_sdl_matches_the_schema_byte_for_byte():
    exported = export_sdl().encode("utf-8")
    assert SDL_PATH.is_file(), f"{SDL_PATH} is missing; create it with `{REGENERATE}`"
    committed = SDL_PATH.read_bytes()
    if committed != exported:
        diff = "".join(
            difflib.unified_diff(
                committed.decode("utf-8", errors="replace").splitlines(keepends=True),
                exported.decode("utf-8").splitlines(keepends=True),
                fromfile="graphql/schema.graphql (committed)",
                tofile="export_sdl() (code)",
                n=1,
            )
        )
        raise AssertionError(
            f"graphql/schema.graphql has drifted from the schema in code. Regenerate it with "
            f"`{REGENERATE}`, review the diff (API users see every change) and commit it.\n"
            f"{diff or '(differences in whitespace or line endings only)'}"
        )
