import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pg"))


@pytest.fixture(scope="module")
def pg():
    """A private PostgreSQL for the module's tests (tests/pg/pgserver.py)."""
    from pgserver import PgServer
    with PgServer() as server:
        yield server
