"""pytest fixtures for a real kubernetes service started by the suite."""

from __future__ import annotations
