"""pytest fixtures for a real s3 service started by the suite."""

from __future__ import annotations
