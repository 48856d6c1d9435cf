"""`tenantcrm serve` hands uvicorn an app whose startup objects the cycle collector no longer walks."""

from __future__ import annotations

import argparse
import gc

import uvicorn

from tenantcrm import cli
from tenantcrm.settings import Settings


def test_serve_freezes_what_startup_built_before_serving(monkeypatch, tmp_path):
    served: dict[str, int] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.update(frozen=gc.get_freeze_count()))
    monkeypatch.setattr(
        "tenantcrm.runtime.admin_url_for", lambda settings: "postgresql://nobody@127.0.0.1/none"
    )
    settings = Settings(
        data_dir=tmp_path, environment="test", secret_key="s" * 40, database_url="postgresql://x/y"
    )
    gc.unfreeze()
    try:
        assert cli.serve(settings, argparse.Namespace(host=None, port=None)) == 0
    finally:
        gc.unfreeze()  # the rest of the test run collects as usual
    # The app (schema, mappers, templates) was built and frozen: tens of thousands of objects.
    assert served["frozen"] > 10_000
