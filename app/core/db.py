"""The SQL database behind reports and jobs: engine, tables and migrations (Alembic)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    DateTime,
    Dialect,
    Engine,
    Float,
    Index,
    Integer,
    String,
    Text,
    create_engine,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware in UTC.

    PostgreSQL keeps the zone; SQLite hands back naive values. Everything stored is UTC, so
    the zone is restored here, once, instead of in every reader.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


class ReportRow(Base):
    """A stored report: searchable columns beside the full JSON document."""

    __tablename__ = "reports"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    suite: Mapped[str | None] = mapped_column(String(128), index=True)
    dataset_name: Mapped[str] = mapped_column(String(512), index=True)
    rows: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    warned: Mapped[int] = mapped_column(Integer)
    document: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        Index("ix_reports_created_id", "created_at", "id"),
        Index("ix_reports_dataset_created", "dataset_name", "created_at"),
    )


class MetricRow(Base):
    """One figure of one stored report (issue 16): a dataset's trends are read from here, by
    (dataset_name, created_at), never by parsing every stored document. Written with its report,
    in the same transaction; deleted with it."""

    __tablename__ = "report_metrics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    report_id: Mapped[str] = mapped_column(String(32), index=True)
    dataset_name: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # `rows`, `verdict`, `null_share`, `mean`, `unexpected_share`, `drift_score`, `outcome`.
    metric: Mapped[str] = mapped_column(String(32))
    # A column name, or a check's key; empty for the table-level figures.
    subject: Mapped[str] = mapped_column(Text)
    value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (
        Index("ix_report_metrics_dataset_created", "dataset_name", "created_at"),
        # The newest `limit` verdicts of a dataset, read without visiting its other figures.
        Index(
            "ix_report_metrics_dataset_metric_created",
            "dataset_name",
            "metric",
            "created_at",
            "report_id",
        ),
    )


class JobRow(Base):
    """A validation job: durable before its 202 is sent, claimed by one replica at a time."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    owner: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    spec: Mapped[str] = mapped_column(Text)
    callback_url: Mapped[str | None] = mapped_column(Text)


def make_engine(url: str) -> Engine:
    """An engine for the store; SQLite gets WAL and a busy timeout so readers do not block."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def make_sessionmaker(engine: Engine) -> sessionmaker:  # type: ignore[type-arg]
    return sessionmaker(engine, expire_on_commit=False)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent; safe for several replicas)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Replicas starting together must not race to create the same tables.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(727274)")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


# --- Suites created through the API (tooling) ---------------------------------------------


class SuiteRow(Base):
    """A suite PUT through the API; suites from `expectations/` live in version control instead."""

    __tablename__ = "suites"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    definition: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
