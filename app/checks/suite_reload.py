"""Suite files reloaded while the service runs: the expectations folder is polled by modification
time; an added, changed or removed file is checked first, and a broken one never replaces a good
version."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.checks.expectations import SUITE_CHECK_SECONDS, parse_suite, suite_problems
from app.checks.suite_store import SuiteCatalog
from app.checks.workers import WorkerPool
from app.core.errors import DatagateError, InvalidRequest, SuiteInvalid

log = logging.getLogger("datagate.suites")

# A file's modification time (ns) and size: either changing means the file changed.
FileStamp = tuple[int, int]


def folder_stamps(folder: Path) -> dict[str, FileStamp]:
    """Every suite file in `folder` by suite name (the file stem), with its stamp."""
    stamps: dict[str, FileStamp] = {}
    if not folder.is_dir():
        return stamps
    for path in folder.glob("*.json"):
        try:
            info = path.stat()
        except OSError:  # removed between the listing and the stat: gone
            continue
        stamps[path.stem] = (info.st_mtime_ns, info.st_size)
    return stamps


@dataclass
class ReloadResult:
    """What one look at the folder did, by suite name."""

    loaded: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.loaded or self.refused or self.removed)


class SuiteFolderWatcher:
    """Keeps the catalog's file suites in step with the expectations folder."""

    def __init__(
        self,
        folder: Path,
        suites: SuiteCatalog,
        pool: WorkerPool,
        stamps: dict[str, FileStamp],
    ) -> None:
        self.folder = folder
        self.suites = suites
        self.pool = pool
        # The stamps taken before the start-up load: a file changed during it is seen at once.
        self._stamps = dict(stamps)

    async def reload(self) -> ReloadResult:
        """Look at the folder once and apply what changed since the last look."""
        result = ReloadResult()
        now = await asyncio.to_thread(folder_stamps, self.folder)
        for name in sorted(set(self._stamps) - set(now)):
            self.suites.drop_file_suite(name)
            result.removed.append(name)
            log.info("suite file %s.json removed: suite %s unloaded", name, name)
        changed = sorted(n for n, stamp in now.items() if self._stamps.get(n) != stamp)
        for name in changed:
            try:
                outcome = await self._load(name)
            except DatagateError as exc:
                # The check could not run (workers busy or restarting): try again next time.
                log.warning("suite file %s.json not checked yet: %s", name, exc.message)
                now.pop(name)
                if name in self._stamps:
                    now[name] = self._stamps[name]
                continue
            if outcome is None:
                result.loaded.append(name)
            else:
                result.refused[name] = outcome
        self._stamps = now
        return result

    async def _load(self, name: str) -> str | None:
        """Check and load one suite file; the reason it was refused, or None when loaded."""
        path = self.folder / f"{name}.json"
        try:
            text = await asyncio.to_thread(path.read_bytes)
            size = len(text)
            if size > self.suites.limits.max_bytes:
                raise SuiteInvalid(
                    f'suite "{name}": {size} bytes is over the limit of '
                    f"{self.suites.limits.max_bytes} bytes per suite"
                )
            suite = parse_suite(name, text, "file", check=False, limits=self.suites.limits)
        except (SuiteInvalid, InvalidRequest) as exc:
            return self._refuse(name, exc.message)
        except OSError as exc:
            return self._refuse(name, f"cannot read {path.name}: {exc.strerror}")
        problems = await self.pool.run(
            suite_problems, [suite], time_limit=SUITE_CHECK_SECONDS, what="the suite check"
        )
        if suite.name in problems:
            return self._refuse(name, problems[suite.name])
        self.suites.load_file_suite(suite)
        log.info(
            "suite file %s.json loaded: %d expectations, sha256 %s",
            name,
            suite.expectation_count,
            suite.sha256[:12],
        )
        return None

    def _refuse(self, name: str, reason: str) -> str:
        self.suites.refuse_file_suite(name, reason)
        if name in self.suites.not_reloaded:
            log.error("suite file %s.json refused, the loaded version stays: %s", name, reason)
        else:
            log.error("suite file %s.json not loaded: %s", name, reason)
        return reason

    async def watch(self, interval_s: float) -> None:
        """Reload every `interval_s` seconds until cancelled; a failed look is logged."""
        while True:
            await asyncio.sleep(interval_s)
            started = time.monotonic()
            try:
                result = await self.reload()
            except Exception:  # the watcher must outlive any one bad look at the folder
                log.exception("looking at the expectations folder failed")
                continue
            if result.changed:
                log.info(
                    "suites reloaded in %.2f s: %d loaded, %d refused, %d removed",
                    time.monotonic() - started,
                    len(result.loaded),
                    len(result.refused),
                    len(result.removed),
                )
