"""JSON bytes of a pydantic model that never fail on strings holding lone surrogates."""

from __future__ import annotations

import json
import re

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError

_SURROGATE = re.compile("[\ud800-\udfff]")


def has_lone_surrogate(text: str) -> bool:
    """Whether text holds a UTF-16 surrogate code point, which UTF-8 cannot encode."""
    return _SURROGATE.search(text) is not None


def model_json_bytes(model: BaseModel) -> bytes:
    """The model as compact JSON bytes, lone surrogates in its strings replaced by U+FFFD."""
    try:
        return model.model_dump_json().encode()
    except PydanticSerializationError:
        # Only text a program made at run time (printed, a module name) can hold them.
        text = json.dumps(model.model_dump(mode="json"), ensure_ascii=False)
        return _SURROGATE.sub("\ufffd", text).encode()
