"""Recorded sessions (prediction_machine/recording.py): the list, and one recording's events.

A teacher whose server cannot keep up replays a generation or a training run recorded earlier with
`prediction-machine record`; the page draws it with the same figures as a live run and labels it
"recorded". Both answers are read from files of a bounded size and count; nothing is computed here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import Field
from starlette.exceptions import HTTPException

from prediction_machine import recording

router = APIRouter(prefix="/api/recordings", tags=["recordings"])


@router.get("", summary="Recorded sessions this server offers: shipped ones and those saved by `record`")
def list_recordings() -> dict:
    return {"recordings": recording.catalogue()}


@router.get("/{name}", summary="One recorded session: its settings and the events a live run sent")
def get_recording(name: Annotated[str, Field(pattern=recording.NAME)]) -> dict:
    try:
        return recording.load(name)
    except recording.RecordingError as e:
        raise HTTPException(404, str(e)) from None
