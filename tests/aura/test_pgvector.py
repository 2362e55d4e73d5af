"""pgvector: a clear install message when the server lacks it; the test DB has it."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection

from aura.pgvector import (
    INSTALL_HELP,
    CreateVectorExtension,
    PgvectorMissing,
    check_pgvector_available,
)


class FakeCursor:
    def __init__(self, vector_available: bool) -> None:
        self.vector_available = vector_available
        self.executed: list[str] = []

    def execute(self, sql: str) -> None:
        self.executed.append(sql)

    def fetchone(self) -> Any:
        return (1,) if self.vector_available else None


class FakeSchemaEditor:
    def __init__(self, cursor: FakeCursor) -> None:
        self.connection = self
        self._cursor = cursor

    @contextmanager
    def cursor(self):
        yield self._cursor


def test_the_migration_fails_with_install_instructions_when_pgvector_is_missing():
    cursor = FakeCursor(vector_available=False)
    with pytest.raises(PgvectorMissing) as err:
        CreateVectorExtension().database_forwards("routing", FakeSchemaEditor(cursor), None, None)
    message = str(err.value)
    assert message == INSTALL_HELP
    assert "pgvector" in message
    assert "apt-get install postgresql-<major>-pgvector" in message
    assert "unset DATABASE_URL" in message
    assert not any("CREATE EXTENSION" in sql for sql in cursor.executed)


def test_the_migration_creates_the_extension_when_pgvector_is_available():
    cursor = FakeCursor(vector_available=True)
    CreateVectorExtension().database_forwards("routing", FakeSchemaEditor(cursor), None, None)
    assert cursor.executed[-1] == "CREATE EXTENSION IF NOT EXISTS vector"


def test_unapplying_the_migration_never_drops_the_extension():
    cursor = FakeCursor(vector_available=True)
    CreateVectorExtension().database_backwards("routing", FakeSchemaEditor(cursor), None, None)
    assert cursor.executed == []


def test_the_start_up_check_fails_with_install_instructions(monkeypatch):
    @contextmanager
    def no_vector_cursor():
        yield FakeCursor(vector_available=False)

    monkeypatch.setattr(connection, "cursor", no_vector_cursor)
    with pytest.raises(PgvectorMissing, match="pgvector extension"):
        check_pgvector_available()


@pytest.mark.django_db
def test_the_test_database_has_the_vector_extension_installed():
    with connection.cursor() as cur:
        cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cur.fetchone()
        assert row is not None
        cur.execute("SELECT '[1,2,3]'::vector <-> '[1,2,4]'::vector")
        assert cur.fetchone()[0] == pytest.approx(1.0)
    check_pgvector_available()
