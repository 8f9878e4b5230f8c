"""Aligning language-model vectors with behaviour: the map from text vectors to a space
where users who will behave alike are close.

- :class:`AlignmentHead`: a projection head trained on frozen text vectors with a
  multinomial cross-entropy over items (see :mod:`usergroups.alignment.head`);
- :func:`make_bags`: each user's bag of text vectors, the head's input;
- :mod:`usergroups.alignment.lora`: LoRA fine-tuning of the encoder itself (optional).

The alignment stage only learns this map. Where it is trained, and every setting chosen
around it (text weight, number of groups, blends), is the pipeline's model selection:
:mod:`usergroups.selection`.
"""

from usergroups.alignment.bags import make_bags
from usergroups.alignment.head import AlignmentHead, TextBags

__all__ = ["AlignmentHead", "TextBags", "make_bags"]
