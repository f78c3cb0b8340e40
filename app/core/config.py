"""Service configuration from the environment (prefix DATAGATE_), with embedded defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DATAGATE_", extra="ignore")

    data_dir: Path = Field(
        default=Path("./data"),
        description="SQLite file, stored uploads and report artifacts live here.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the report store; default a SQLite file in data_dir.",
    )
    expectations_dir: Path = Field(
        default=Path("./expectations"),
        description="Folder of Great Expectations suite JSON files, one per suite.",
    )
    max_upload_bytes: int = Field(
        default=1024**3, gt=0, description="Largest accepted upload, per file, in bytes."
    )
    max_rows: int = Field(default=10_000_000, gt=0, description="Largest accepted dataset, rows.")
    workers: int = Field(default=2, ge=1, description="Validation worker processes.")
    log_level: str = Field(default="INFO", description="Python logging level.")
    log_format: Literal["text", "json"] = Field(
        default="text", description="`json` writes one JSON object per log line."
    )
    sample_values: int = Field(
        default=20, ge=0, le=1000, description="Offending values kept per check in a report."
    )
    host: str = Field(default="127.0.0.1", description="Address `datagate serve` binds.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `datagate serve` binds.")
    public_url: str | None = Field(
        default=None,
        description="Base URL used in report links; default the URL the request came in on.",
    )

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'datagate.db').resolve()}"
        return self

    @property
    def db_url(self) -> str:
        assert self.database_url is not None
        return self.database_url

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    def ensure_dirs(self) -> None:
        for folder in (self.data_dir, self.uploads_dir, self.artifacts_dir):
            folder.mkdir(parents=True, exist_ok=True)


@lru_cache
def get_settings() -> Settings:
    return Settings()
