"""FastAPI dependencies: the request is the unit of work (commit at the boundary)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from provisioner.db import Database


def get_db(request: Request) -> Database:
    return request.app.state.db


def _session(db: Annotated[Database, Depends(get_db)]) -> Iterator[Session]:
    with db.transaction() as session:
        yield session


# scope="function": the commit runs when the endpoint returns, before the response is sent,
# so a 2xx always means the work is durable.
SessionDep = Annotated[Session, Depends(_session, scope="function")]
DatabaseDep = Annotated[Database, Depends(get_db)]
