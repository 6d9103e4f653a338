"""Type aliases for annotations (the sandbox shares no code with the back office, so it has its own)."""

from typing import Any, TypeAlias

#: A JSON object as a client sends it or as DR answers: parsed, checked by hand where it matters.
JSONObject: TypeAlias = dict[str, Any]
