"""Every test gets a cache directory of its own making, never the user's."""

import pytest


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """``TT_CACHE_DIR`` in a temporary folder (tests that need an empty one set their own)."""
    monkeypatch.setenv("TT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "shared-cache"))
