"""API of the guide's attention section (added by its own issue)."""

from fastapi import APIRouter

router = APIRouter(prefix="/api/attention", tags=["attention"])
