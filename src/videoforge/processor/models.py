"""The processor's tables live in the shared job domain (:mod:`videoforge.jobs.models`).

This module exists so the model registry (:mod:`videoforge.models`) finds them under the
service that owns migration ``0003_processing``.
"""

from __future__ import annotations

from videoforge.jobs.models import AssetType, Job, MediaAsset

__all__ = ["AssetType", "Job", "MediaAsset"]
