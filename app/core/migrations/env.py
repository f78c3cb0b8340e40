"""Alembic environment: runs on the connection `app.core.db.migrate` hands over."""

from alembic import context

from app.core.db import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when run by the alembic CLI
    from sqlalchemy import create_engine

    from app.core.config import get_settings

    connection = create_engine(get_settings().db_url).connect()

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
