"""User vectors from text, behaviour and their fusion."""

from usergroups.fusion.vectors import UserVectorBuilder, l2_normalise, pool_rows

__all__ = ["UserVectorBuilder", "l2_normalise", "pool_rows"]
