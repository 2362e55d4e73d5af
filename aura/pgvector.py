"""pgvector: the migration operation that creates the extension, and a clear failure when
the server cannot provide it."""

from __future__ import annotations

from typing import Any

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.backends.utils import CursorWrapper

INSTALL_HELP = (
    "The Postgres server behind DATABASE_URL does not have the pgvector extension. "
    "Install it on the server (Debian/Ubuntu: apt-get install postgresql-<major>-pgvector; "
    "Docker: use the pgvector/pgvector:pg17 image; managed Postgres: enable the `vector` "
    "extension in the provider's console), or unset DATABASE_URL to let AURA run its own "
    "Postgres with pgvector."
)


class PgvectorMissing(RuntimeError):
    pass


def vector_available(cursor: CursorWrapper) -> bool:
    cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
    return cursor.fetchone() is not None


class CreateVectorExtension(migrations.operations.base.Operation):
    reversible = True

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: Any,
        to_state: Any,
    ) -> None:
        with schema_editor.connection.cursor() as cur:
            if not vector_available(cur):
                raise PgvectorMissing(INSTALL_HELP)
            cur.execute("CREATE EXTENSION IF NOT EXISTS vector")

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: Any,
        to_state: Any,
    ) -> None:
        pass  # other databases objects may still use the type; never drop it implicitly

    def describe(self) -> str:
        return "Creates the pgvector extension"


def check_pgvector_available() -> None:
    """Raise PgvectorMissing at start-up rather than at the first vector query."""
    from django.db import connection

    with connection.cursor() as cur:
        if not vector_available(cur):
            raise PgvectorMissing(INSTALL_HELP)
