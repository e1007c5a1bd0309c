"""pytest fixtures for a real postgres service started by the suite."""

from __future__ import annotations
