"""API of the guide's backprop section (added by its own issue)."""

from fastapi import APIRouter

router = APIRouter(prefix="/api/backprop", tags=["backprop"])
