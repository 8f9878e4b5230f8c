"""Data generators and helpers for tests (used by the project's own suite and by users')."""

from usergroups.testing.synthetic import PlantedData, make_planted

__all__ = ["PlantedData", "make_planted"]
