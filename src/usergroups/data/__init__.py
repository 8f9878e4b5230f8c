"""The data model: validated, immutable interactions, texts, items and users."""

from usergroups.data.model import (
    INTERACTION_COLUMNS,
    ITEM_COLUMNS,
    TEXT_COLUMNS,
    DataReport,
    Dataset,
    IdVocab,
    build_dataset,
    id_string,
    id_strings,
)

__all__ = [
    "INTERACTION_COLUMNS",
    "ITEM_COLUMNS",
    "TEXT_COLUMNS",
    "DataReport",
    "Dataset",
    "IdVocab",
    "build_dataset",
    "id_string",
    "id_strings",
]
