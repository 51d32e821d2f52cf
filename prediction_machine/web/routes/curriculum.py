"""API of the guide's curriculum section (added by its own issue)."""

from fastapi import APIRouter

router = APIRouter(prefix="/api/curriculum", tags=["curriculum"])
