"""Group profiles: keywords, over-consumed items and categories, ratings, attributes, labels."""

from usergroups.profiling.item_names import (
    DERIVED_MARK,
    NameSource,
    derive_item_names,
    shown_name,
    with_top_item_names,
)
from usergroups.profiling.profiles import (
    PROFILE_LIST_COLUMNS,
    GroupProfile,
    attribute_columns,
    build_profiles,
    class_tfidf_keywords,
    detect_language,
)

__all__ = [
    "DERIVED_MARK",
    "PROFILE_LIST_COLUMNS",
    "GroupProfile",
    "NameSource",
    "attribute_columns",
    "build_profiles",
    "class_tfidf_keywords",
    "derive_item_names",
    "detect_language",
    "shown_name",
    "with_top_item_names",
]
