"""Markers by folder, so that `pytest -m integration` or `-m browser` picks a suite."""

from __future__ import annotations

from pathlib import Path

import pytest


def mark_items_under(items: list[pytest.Item], folder: Path, marker: pytest.MarkDecorator) -> None:
    """Adds the marker to every collected test whose file lies under folder."""
    for item in items:
        if folder in item.path.parents:
            item.add_marker(marker)
