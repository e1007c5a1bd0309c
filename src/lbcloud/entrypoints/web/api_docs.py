"""The readable API reference (``/api/docs``), built from the app's own OpenAPI document: every
endpoint with its parameters, its request body's fields and its response's fields (type, required,
description), so a client can be written from the page alone."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape

LITERAL = re.compile(r"``(.+?)``")


@dataclass(frozen=True, slots=True)
class FieldDoc:
    name: str
    type: str
    required: bool
    description: str


@dataclass(frozen=True, slots=True)
class EndpointDoc:
    method: str
    path: str
    summary: str
    description: Markup
    parameters: list[FieldDoc] = field(default_factory=list)
    body_name: str | None = None
    body: list[FieldDoc] = field(default_factory=list)
    response_name: str | None = None
    response: list[FieldDoc] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)


def prose(text: str | None) -> Markup:
    """Docstring text for HTML: escaped, with ``literal`` spans as code."""
    return Markup(LITERAL.sub(lambda m: f"<code>{m.group(1)}</code>", str(escape(text or ""))))


def _ref_name(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def type_name(schema: dict[str, Any]) -> str:
    """A short type: ``string``, ``integer | null``, ``list of RouteOut``, ``RouteOut``."""
    if (name := _ref_name(schema)) is not None:
        return name
    if "anyOf" in schema:
        return " | ".join(type_name(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(repr(v) for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {type_name(schema.get('items', {}))}"
    if kind == "object" and "additionalProperties" in schema:
        return f"map of {type_name(schema['additionalProperties'])}"
    return str(kind)


def _schema_fields(spec: dict[str, Any], schema: dict[str, Any]) -> tuple[str | None, list[FieldDoc]]:
    name = _ref_name(schema)
    if schema.get("type") == "array":
        inner_name, inner = _schema_fields(spec, schema.get("items", {}))
        return (f"list of {inner_name}" if inner_name else None), inner
    if name is not None:
        schema = spec.get("components", {}).get("schemas", {}).get(name, {})
    required = set(schema.get("required", []))
    fields = [
        FieldDoc(key, type_name(prop), key in required, prop.get("description", ""))
        for key, prop in schema.get("properties", {}).items()
    ]
    return name, fields


def describe(spec: dict[str, Any]) -> list[EndpointDoc]:
    """Every operation of ``spec`` in path order."""
    out: list[EndpointDoc] = []
    for path, operations in spec.get("paths", {}).items():
        for method, op in operations.items():
            params = [
                FieldDoc(
                    p["name"],
                    f"{type_name(p.get('schema', {}))} ({p.get('in', '')})",
                    bool(p.get("required")),
                    p.get("description", ""),
                )
                for p in op.get("parameters", [])
            ]
            body_name: str | None = None
            body: list[FieldDoc] = []
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                body_name, body = _schema_fields(spec, content["application/json"].get("schema", {}))
            ok: dict[str, Any] = next((op["responses"][s] for s in ("200", "201") if s in op.get("responses", {})), {})
            response_name: str | None = None
            response: list[FieldDoc] = []
            json_schema = ok.get("content", {}).get("application/json", {}).get("schema")
            if json_schema:
                response_name, response = _schema_fields(spec, json_schema)
            out.append(
                EndpointDoc(
                    method=method.upper(),
                    path=path,
                    summary=op.get("summary", ""),
                    description=prose(op.get("description")),
                    parameters=params,
                    body_name=body_name,
                    body=body,
                    response_name=response_name,
                    response=response,
                    statuses=list(op.get("responses", {})),
                )
            )
    return out
