"""Group profiles: keywords, over-consumed items and categories, ratings, attributes, labels."""

from usergroups.profiling.profiles import (
    PROFILE_LIST_COLUMNS,
    GroupProfile,
    attribute_columns,
    build_profiles,
    class_tfidf_keywords,
    detect_language,
)

__all__ = [
    "PROFILE_LIST_COLUMNS",
    "GroupProfile",
    "attribute_columns",
    "build_profiles",
    "class_tfidf_keywords",
    "detect_language",
]
