"""Recommendations from groups."""

from usergroups.recommend.group_popularity import GroupPopularity, top_n

__all__ = ["GroupPopularity", "top_n"]
