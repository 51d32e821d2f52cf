"""API of "circuits forming while you train": a pre-training run's snapshots (snapshots.py).

Thin on purpose: find the run by name (a shipped record or a run id, never a path), check that
the viewer may see it, read its snapshots.json and serialize. Bounded: at most MAX_SHOWN
snapshots (thinned evenly), each of a fixed size. Ownership as every run route: in classroom
mode another student's run answers the same 404 as a missing one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.exceptions import HTTPException

from prediction_machine.jsonsafe import json_numbers
from prediction_machine.training.curriculum import runs, snapshots
from prediction_machine.web.routes.curriculum import check_owner

router = APIRouter(prefix="/api/curriculum", tags=["curriculum"])


@router.get("/snapshots", summary="The shipped snapshot records, by name")
def shipped_snapshots() -> dict:
    return {"shipped": snapshots.shipped_names(), "threshold": snapshots.induction.FORMED_AT,
            "per_run": snapshots.SNAPSHOTS_PER_RUN}


@router.get("/snapshots/{name}",
            summary="A pre-training run's snapshots: attention, lens, induction and previous-token scores")
def run_snapshots(name: Annotated[str, Field(pattern=runs.RUN_ID)], request: Request) -> dict:
    missing = (f"name: no snapshots called {name!r}; a pre-training run's id, or one of "
               f"{', '.join(snapshots.shipped_names())}")
    if name in snapshots.shipped_names():
        return json_numbers(snapshots.run_snapshots(name), 4)
    folder = runs.runs_dir() / name
    if not folder.is_dir():
        raise HTTPException(404, missing)
    check_owner(request, name, folder, missing)
    doc = snapshots.of_folder(folder)
    if doc is None:
        raise HTTPException(404, missing)
    return json_numbers(doc, 4)
