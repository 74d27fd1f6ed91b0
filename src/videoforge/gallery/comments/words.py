"""Instance-wide blocked words (``COMMENT_BLOCKED_WORDS``): a comment containing one, as
a whole word and in any case, is held for the video owner's approval."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable


@functools.lru_cache(maxsize=8)
def _pattern(words: tuple[str, ...]) -> re.Pattern[str] | None:
    cleaned = sorted({w.strip().casefold() for w in words if w.strip()}, key=len, reverse=True)
    if not cleaned:
        return None
    # Whole words: no word character may touch the match on either side, so "ass"
    # does not hold "classic". Words are escaped: the list is data, not regex syntax.
    alternatives = "|".join(re.escape(w) for w in cleaned)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE | re.UNICODE)


def contains_blocked(text: str, words: Iterable[str]) -> bool:
    """Whether ``text`` contains one of ``words`` as a whole word, ignoring case."""
    pattern = _pattern(tuple(words))
    return pattern is not None and pattern.search(text.casefold()) is not None
