"""Group profiles: keywords, over-consumed items, labels."""

from usergroups.profiling.profiles import (
    GroupProfile,
    build_profiles,
    class_tfidf_keywords,
    detect_language,
)

__all__ = ["GroupProfile", "build_profiles", "class_tfidf_keywords", "detect_language"]
