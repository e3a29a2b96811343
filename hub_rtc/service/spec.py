"""The OpenAPI spec as the contract: request bodies are validated against it."""

from __future__ import annotations

from functools import cache
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ..manager.errors import Invalid
from ..resources import openapi_path

_BASE = "urn:hub-rtc:openapi"


@cache
def spec() -> dict[str, Any]:
    with open(openapi_path(), encoding="utf-8") as f:
        return yaml.safe_load(f)


@cache
def validator(schema_name: str) -> Draft202012Validator:
    document = Resource.from_contents(spec(), default_specification=DRAFT202012)
    registry = Registry().with_resource(_BASE, document)
    ref = {"$ref": f"{_BASE}#/components/schemas/{schema_name}"}
    return Draft202012Validator(ref, registry=registry)


def check(schema_name: str, value: Any) -> None:
    """Raise :class:`Invalid` naming the first place ``value`` breaks the schema."""
    error = next(iter(validator(schema_name).iter_errors(value)), None)
    if error is None:
        return
    where = "/".join(str(p) for p in error.absolute_path) or "body"
    raise Invalid(f"{where}: {error.message}")
