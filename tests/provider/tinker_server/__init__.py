"""Tests against local Tinker-compatible servers, started once for this package (conftest.py)."""
