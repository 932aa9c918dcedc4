"""Where the inbox lives. On PostgreSQL it is a table of the hub's database like any other. On SQLite it is a
database file of its own beside the hub's (``shopbridge.db`` → ``shopbridge-inbox.db``): SQLite has one writer
per file, and an acknowledgement that shared the hub's file waited for whatever transaction held it (an order
sync writing twenty orders, a stock push recording its versions). With a file of its own, a webhook waits only for
other inbox writes, which take a millisecond.

The inbox file holds one table, ``inbound_events``, built from the same model as the hub's table but without the
foreign key to ``channel_accounts`` (which lives in the other file). Its schema version is kept in SQLite's
``user_version``; the table is created on first use."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import CheckConstraint, Column, Connection, Engine, Index, MetaData, Table, UniqueConstraint, text
from sqlalchemy.engine import make_url

from shopbridge.store.tables import InboundEvent

INBOX_SCHEMA_VERSION = 2  # 2: the status 'ignored'


def inbox_database_url(database_url: str) -> str | None:
    """The URL of a separate inbox database, or None when the inbox shares the hub's database (PostgreSQL, and
    SQLite in memory, where a second file would be a second, empty world)."""
    parsed = make_url(database_url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    path = Path(parsed.database)
    return parsed.set(database=str(path.with_name(f"{path.stem}-inbox{path.suffix or '.db'}"))).render_as_string(
        hide_password=False
    )


def _standalone_inbox_table() -> Table:
    """``inbound_events`` as the model declares it, minus foreign keys: same columns, uniqueness, checks, indexes."""
    source = InboundEvent.__table__
    assert isinstance(source, Table)
    metadata = MetaData()
    columns = [
        Column(column.name, column.type, primary_key=column.primary_key, nullable=column.nullable)
        for column in source.columns
    ]
    constraints: list[UniqueConstraint | CheckConstraint] = []
    for constraint in source.constraints:
        if isinstance(constraint, UniqueConstraint):
            constraints.append(UniqueConstraint(*constraint.columns.keys()))
        elif isinstance(constraint, CheckConstraint):
            constraints.append(CheckConstraint(constraint.sqltext, name=constraint.name))
    table = Table(source.name, metadata, *columns, *constraints)
    for index in source.indexes:
        names = [column.name for column in index.columns]
        Index(f"ix_{source.name}_{'_'.join(names)}", *(table.c[name] for name in names))
    Index(f"ix_{source.name}_channel_account_id_status", table.c.channel_account_id, table.c.status)
    return table


INBOX_TABLE = _standalone_inbox_table()


def ensure_inbox_schema(engine: Engine) -> None:
    """Create the inbox file's table and indexes if they are missing (idempotent; cheap on every start)."""
    with engine.begin() as connection:
        version = connection.exec_driver_sql("PRAGMA user_version").scalar() or 0
        if version > INBOX_SCHEMA_VERSION:
            raise RuntimeError(
                f"the inbox database has schema version {version}, newer than this shopbridge knows "
                f"({INBOX_SCHEMA_VERSION}); upgrade shopbridge"
            )
        if version == 1:
            _rebuild_from_version_1(connection)
        INBOX_TABLE.metadata.create_all(connection)
        connection.execute(text(f"PRAGMA user_version = {INBOX_SCHEMA_VERSION}"))


def _rebuild_from_version_1(connection: Connection) -> None:
    """Version 2 admits the status ``ignored``. SQLite cannot change a CHECK constraint in place: the old table is
    renamed, its indexes dropped (they keep their names), the new one created and the rows copied over."""
    old = f"{INBOX_TABLE.name}_v1"
    connection.exec_driver_sql(f"ALTER TABLE {INBOX_TABLE.name} RENAME TO {old}")
    indexes = connection.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", (old,)
    ).scalars()
    for name in list(indexes):
        connection.exec_driver_sql(f'DROP INDEX "{name}"')
    INBOX_TABLE.metadata.create_all(connection)
    columns = ", ".join(column.name for column in INBOX_TABLE.columns)
    copy = f"INSERT INTO {INBOX_TABLE.name} ({columns}) SELECT {columns} FROM {old}"  # noqa: S608 - our own names
    connection.exec_driver_sql(copy)
    connection.exec_driver_sql(f"DROP TABLE {old}")
