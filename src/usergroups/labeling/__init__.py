"""Optional group labels from an OpenAI-compatible chat endpoint (off by default)."""

from usergroups.labeling.llm import (
    LLMLabel,
    LLMLabeller,
    build_messages,
    label_profiles,
    parse_completion,
)

__all__ = ["LLMLabel", "LLMLabeller", "build_messages", "label_profiles", "parse_completion"]
