"""The page's translated strings, read from static/js/i18n.js however prettier wraps them."""

from __future__ import annotations

import json
import re
from pathlib import Path

I18N = Path(__file__).resolve().parent.parent / "static" / "js" / "i18n.js"
_ENTRY = re.compile(r'"([\w.]+)":\s*("(?:[^"\\]|\\.)*")')


def page_strings() -> dict[str, dict[str, str]]:
    """{"en": {key: text}, "zh": {key: text}} as the page has them."""
    english, chinese = I18N.read_text("utf-8").split("\n  zh: {", 1)
    return {
        lang: {key: json.loads(text) for key, text in _ENTRY.findall(part)}
        for lang, part in (("en", english), ("zh", chinese))
    }
