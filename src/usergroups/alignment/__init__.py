"""Aligning language-model vectors with behaviour.

- :class:`AlignmentHead`: a projection head trained on frozen text vectors with a
  multinomial cross-entropy over items (see :mod:`usergroups.alignment.head`);
- :func:`fit_aligned`: the validation carve, the head, and every choice (text weight,
  number of groups, personal and cold-start blends) made on validation data cut from
  training (see :mod:`usergroups.alignment.fit`);
- :mod:`usergroups.alignment.lora`: LoRA fine-tuning of the encoder itself (optional).
"""

from usergroups.alignment.fit import (
    AlignmentResult,
    ValidationCarve,
    carve_validation,
    fit_aligned,
    fuse_blocks,
    knn_proba,
    make_bags,
)
from usergroups.alignment.head import AlignmentHead, TextBags, ndcg_at_k

__all__ = [
    "AlignmentHead",
    "AlignmentResult",
    "TextBags",
    "ValidationCarve",
    "carve_validation",
    "fit_aligned",
    "fuse_blocks",
    "knn_proba",
    "make_bags",
    "ndcg_at_k",
]
