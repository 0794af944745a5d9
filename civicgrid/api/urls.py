from __future__ import annotations

from civicgrid.api.v1 import api

__all__ = ["api"]
