"""The embedded PostgreSQL (pgserver) used when no DATABASE_URL is given."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

logging.getLogger("pgserver").setLevel(logging.WARNING)


def start_embedded_server(data_dir: Path, *, delete_on_exit: bool = False) -> str:
    """Start (or join) a private PostgreSQL in `data_dir/pg` and return its admin URL.

    The server stops when the last process that started or joined it exits.
    """
    import pgserver  # imported late: it pulls psutil and platform folders

    pgdata = data_dir / "pg"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pgserver.get_server(pgdata, cleanup_mode="delete" if delete_on_exit else "stop")
    return server.get_uri()
