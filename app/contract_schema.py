"""The JSON Schema of the Graph contract, exactly as the API and the command line send it."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from app.schemas import NON_FINITE, Graph

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class ContractJsonSchema(GenerateJsonSchema):
    """JSON Schema of the contract as sent: any float may also be a non-finite string."""

    def float_schema(self, schema: core_schema.FloatSchema) -> JsonSchemaValue:
        """A number, or "NaN" / "Infinity" / "-Infinity" (ser_json_inf_nan="strings")."""
        return {"anyOf": [super().float_schema(schema), {"enum": list(NON_FINITE)}]}


@lru_cache
def graph_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the Graph exactly as the API and the CLI send it."""
    schema = Graph.model_json_schema(mode="serialization", schema_generator=ContractJsonSchema)
    return {"$schema": JSON_SCHEMA_DIALECT, **schema}
