"""Text utilities (Sphinx-style docstrings)."""

from __future__ import annotations

from qasdk import tool as register


@register
def word_count(text: str, unique: bool = False) -> int:
    """Count the words in a text.

    :param text: The text to count words in.
    :param unique: Count each distinct word once.
    :returns: The number of words.
    """
    words = text.lower().split()
    return len(set(words)) if unique else len(words)


@register(tags=["text"])
def summarize(text: str, max_words: int | None = None, keywords: list[str] | None = None) -> dict:
    """Give a short summary of a text: its first words and which keywords it mentions.

    :param text: The text to summarize.
    :param max_words: Keep at most this many words; all of them when empty.
    :param keywords: Words to look for.
    """
    words = text.split()
    head = words if max_words is None else words[:max_words]
    found = sorted({k for k in keywords or [] if k.lower() in text.lower()})
    return {"summary": " ".join(head), "keywords_found": found}
