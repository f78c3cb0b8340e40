"""Suites: list the Great Expectations suites the service knows, and show one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from app.api.deps import SuitesDep

router = APIRouter(prefix="/v1/suites", tags=["suites"])


class SuiteListing(BaseModel):
    name: str
    origin: str
    sha256: str
    expectations: int


class BrokenSuite(BaseModel):
    name: str
    error: str


class SuiteList(BaseModel):
    items: list[SuiteListing]
    broken: list[BrokenSuite]


class SuiteDetail(SuiteListing):
    definition: dict[str, Any]


@router.get("", response_model=SuiteList, summary="Suites the service can run")
async def list_suites(suites: SuitesDep) -> SuiteList:
    return SuiteList(
        items=[
            SuiteListing(
                name=s.name, origin=s.origin, sha256=s.sha256, expectations=s.expectation_count
            )
            for s in suites.list()
        ],
        broken=[BrokenSuite(name=n, error=e) for n, e in sorted(suites.errors.items())],
    )


@router.get("/{name}", response_model=SuiteDetail, summary="One suite's definition")
async def get_suite(name: str, suites: SuitesDep) -> SuiteDetail:
    suite = suites.get(name)
    return SuiteDetail(
        name=suite.name,
        origin=suite.origin,
        sha256=suite.sha256,
        expectations=suite.expectation_count,
        definition=suite.definition,
    )
