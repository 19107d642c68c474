"""Alembic's generic env.py with the two settings that make an upgrade safe on SQLite.

1. Real transactions. Python's sqlite3 driver opens a transaction only before INSERT, UPDATE
   or DELETE, so each CREATE/ALTER/DROP of a revision commits on its own, and Alembic's SQLite
   dialect assumes non-transactional DDL. SQLAlchemy's documented recipe for pysqlite turns the
   driver's own BEGIN off and emits one when SQLAlchemy begins a transaction.
2. One transaction, under the write lock, for the whole upgrade. ``BEGIN IMMEDIATE`` takes
   SQLite's write lock before Alembic reads ``alembic_version``, and ``transactional_ddl=True``
   makes ``context.begin_transaction()`` that one transaction: a second process waits (the
   driver's 5 s busy timeout), then finds the file current.
"""

from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import Connection, engine_from_config, event, pool

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )

    @event.listens_for(connectable, "connect")
    def _no_driver_transactions(dbapi_connection: Any, _record: object) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(connectable, "begin")
    def _begin_immediate(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=None, transactional_ddl=True)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
