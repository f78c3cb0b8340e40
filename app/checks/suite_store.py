"""Suites created through the API: kept in the database, merged with the version-controlled ones.

Every replica reads an API suite from the database when it is asked for, so a suite PUT on one
replica runs on all of them at once; the parsed suite is cached by content hash.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.checks.expectations import (
    LoadedSuite,
    SuiteRegistry,
    canonical_json,
    check_suite_name,
    parse_suite,
)
from app.checks.inference import InferenceOptions, infer_suite
from app.core.db import SuiteRow
from app.core.errors import Conflict, ServiceBusy, SuiteInvalid, SuiteNotFound
from app.ingest.formats import DataFormat, DecodeLimits, read_dataframe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredSuite:
    name: str
    sha256: str
    definition: str


class SuiteStore:
    """The `suites` table: one row per API suite, its canonical JSON and that JSON's hash."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def fetch(self, name: str) -> StoredSuite | None:
        with self._sessions() as session:
            row = session.get(SuiteRow, name)
            return None if row is None else _stored(row)

    def fetch_all(self) -> list[StoredSuite]:
        with self._sessions() as session:
            rows = session.scalars(select(SuiteRow).order_by(SuiteRow.name))
            return [_stored(row) for row in rows]

    def save(self, suite: LoadedSuite) -> bool:
        """Insert or replace `suite`; True when it did not exist before."""
        now = datetime.now(UTC)
        text = canonical_json(suite.definition)
        for _attempt in range(2):
            try:
                with self._sessions.begin() as session:
                    row = session.get(SuiteRow, suite.name)
                    if row is None:
                        session.add(
                            SuiteRow(
                                name=suite.name,
                                sha256=suite.sha256,
                                definition=text,
                                created_at=now,
                                updated_at=now,
                            )
                        )
                        return True
                    row.sha256, row.definition, row.updated_at = suite.sha256, text, now
                    return False
            except IntegrityError:
                # Another replica inserted the same name between our read and our insert:
                # the second attempt finds its row and replaces it.
                continue
        raise Conflict(f'suite "{suite.name}" is being written concurrently; retry')

    def delete(self, name: str) -> bool:
        """Remove the suite; False when there was none."""
        with self._sessions.begin() as session:
            result = session.execute(delete(SuiteRow).where(SuiteRow.name == name))
            return bool(getattr(result, "rowcount", 0))


def _stored(row: SuiteRow) -> StoredSuite:
    return StoredSuite(name=row.name, sha256=row.sha256, definition=row.definition)


class SuiteCatalog(SuiteRegistry):
    """The registry the service runs with: read-only file suites plus API suites from the DB."""

    def __init__(self, files: SuiteRegistry, store: SuiteStore) -> None:
        super().__init__(files.limits)
        self.store = store
        for suite in files.list():
            super().add(suite)
        self.errors.update(files.errors)
        # API suites a worker's Great Expectations check rejected, by name: (sha256, reason).
        self._rejected: dict[str, tuple[str, str]] = {}
        # Names taken by version control, broken files included: the API may not shadow them.
        self.file_names: set[str] = set(files.names()) | set(files.errors)
        self.refresh()

    def is_file_suite(self, name: str) -> bool:
        return name in self.file_names

    def refresh(self) -> None:
        """Load every API suite from the database, dropping those deleted elsewhere."""
        seen: set[str] = set()
        for stored in self.store.fetch_all():
            if stored.name in self.file_names:
                log.warning(
                    'API suite "%s" is shadowed by the suite file of the same name', stored.name
                )
                continue
            seen.add(stored.name)
            # A suite that no longer parses is recorded in errors by _load; the listing names it.
            with contextlib.suppress(SuiteInvalid):
                self._load(stored)
        for name in [s.name for s in self.list() if s.origin == "api" and s.name not in seen]:
            self._forget(name)
        for name in [n for n in self.errors if n not in self.file_names and n not in seen]:
            self.errors.pop(name, None)

    def get(self, name: str) -> LoadedSuite:
        check_suite_name(name)
        if name in self.file_names:
            return super().get(name)
        try:
            stored = self.store.fetch(name)
        except SQLAlchemyError as exc:
            cached = self._cached(name)
            if cached is not None:
                log.warning('suite store unreachable; running cached suite "%s": %s', name, exc)
                return cached
            raise ServiceBusy(
                f'the suite store is unreachable; suite "{name}" cannot be loaded, retry later',
                headers={"Retry-After": "5"},
            ) from exc
        if stored is None:
            self._forget(name)
            return super().get(name)
        return self._load(stored)

    def put(self, suite: LoadedSuite) -> bool:
        """Store and register an API suite; True when it is new. File suites are refused."""
        self.check_writable(suite.name)
        created = self.store.save(suite)
        self.add(suite)
        return created

    def delete(self, name: str) -> None:
        check_suite_name(name)
        self.check_writable(name)
        if not self.store.delete(name):
            self._forget(name)
            raise SuiteNotFound(f'suite "{name}" not found')
        self._forget(name)

    def check_writable(self, name: str) -> None:
        """Raise Conflict when `name` belongs to a suite file from version control."""
        if name in self.file_names:
            raise Conflict(
                f'suite "{name}" comes from version control ({name}.json in the expectations '
                "folder) and is read-only here: change the file and redeploy, or use another "
                "name for a suite managed through the API"
            )

    def mark_broken(self, name: str, message: str) -> None:
        cached = self._cached(name)
        if cached is not None and cached.origin == "api":
            # Remembered by content, so that loading the same definition again from the
            # database (which does not run Great Expectations) keeps it broken.
            self._rejected[name] = (cached.sha256, message)
        super().mark_broken(name, message)

    def load_file_suite(self, suite: LoadedSuite) -> None:
        """Run this checked version of a suite file from now on (an API suite of that name is
        shadowed, as at start-up)."""
        self.file_names.add(suite.name)
        self.not_reloaded.pop(suite.name, None)
        self.add(suite)
        self.mark_checked(suite)

    def refuse_file_suite(self, name: str, reason: str) -> None:
        """A suite file's new version is broken: a good version loaded before keeps running
        (the reason is listed beside it); without one, the suite is listed as broken."""
        cached = self._cached(name)
        self.file_names.add(name)
        if cached is not None and cached.origin == "file":
            self.not_reloaded[name] = reason
            return
        if cached is not None:  # an API suite the new file now shadows
            self._forget(name)
        self.errors[name] = reason

    def drop_file_suite(self, name: str) -> None:
        """The suite file was removed: the suite is gone (an API suite of that name returns)."""
        self.file_names.discard(name)
        self.not_reloaded.pop(name, None)
        self._forget(name)
        self.refresh()

    def _cached(self, name: str) -> LoadedSuite | None:
        return next((s for s in self.list() if s.name == name), None)

    def _load(self, stored: StoredSuite) -> LoadedSuite:
        cached = self._cached(stored.name)
        if cached is not None and cached.sha256 == stored.sha256:
            return cached
        rejected = self._rejected.get(stored.name)
        if rejected is not None and rejected[0] == stored.sha256:
            self._forget(stored.name)
            self.errors[stored.name] = rejected[1]
            raise SuiteInvalid(rejected[1])
        try:
            # The shape only: the replica that stored it had a worker check its expectations,
            # and a worker checks them again before it runs them.
            suite = parse_suite(
                stored.name, stored.definition, "api", check=False, limits=self.limits
            )
        except SuiteInvalid as exc:
            # A stored suite that no longer parses (say, after an engine upgrade) is listed
            # as broken, like a broken file, instead of stopping the service.
            self._forget(stored.name)
            self.errors[stored.name] = exc.message
            raise
        self.add(suite)
        return suite

    def _forget(self, name: str) -> None:
        while self._cached(name) is not None or name in self.errors:
            self.remove(name)


def infer_suite_from_file(
    path: Path,
    fmt: DataFormat,
    name: str,
    max_rows: int,
    limits: DecodeLimits | None = None,
    file_name: str | None = None,
    options: InferenceOptions | None = None,
) -> dict[str, Any]:
    """Read a reference dataset and propose a suite for it; runs in a worker process."""
    frame = read_dataframe(path, fmt, max_rows=max_rows, limits=limits, name=file_name)
    return infer_suite(frame, name, options=options, max_columns=limits.columns if limits else None)
