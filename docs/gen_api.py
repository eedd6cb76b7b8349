"""Generate docs/api.md from the edge node's OpenAPI document (edge_node.api.openapi.build_document).

    .venv/bin/python docs/gen_api.py            # rewrite docs/api.md
    .venv/bin/python docs/gen_api.py --check    # exit 1 when docs/api.md is not what the generator writes

tests/deploy/test_deploy_docs.py runs the check, so a change to the API without regenerating fails the tests.
The output depends only on the document (no dates, no environment), so it is stable between runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "api.md"
REF_PREFIX = "#/components/schemas/"
METHODS = ("get", "post", "put", "patch", "delete")


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    kept = "".join(ch for ch in heading.strip().lower() if ch.isalnum() or ch in " -_")
    return kept.replace(" ", "-")


def _cell(text: object) -> str:
    """Markdown we build (links, code spans) for one table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _text(text: object) -> str:
    """Free text from the document (summaries, descriptions): `<job>` must not turn into an HTML tag."""
    return _cell(str(text).replace("<", "&lt;").replace(">", "&gt;"))


def _ref_name(ref: str) -> str:
    return ref.removeprefix(REF_PREFIX)


def type_of(schema: dict[str, Any]) -> str:
    """A short, linked description of a JSON schema's type."""
    if not schema:
        return "any"
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return f"[{name}](#{slug(name)})"
    if "anyOf" in schema or "oneOf" in schema:
        options = schema.get("anyOf") or schema.get("oneOf") or []
        return " or ".join(type_of(option) for option in options)
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        return f"array of {type_of(schema.get('items', {}))}"
    if kind == "string" and schema.get("format") == "binary":
        return "file"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {type_of(schema['additionalProperties'])}"
    return str(kind or "any")


def constraints(schema: dict[str, Any]) -> str:
    """Enum, bounds and default of a schema, in words."""
    parts = []
    if "enum" in schema:
        parts.append("one of " + ", ".join(f"`{value}`" for value in schema["enum"]))
    for key, word in (("minimum", "min"), ("maximum", "max"), ("minItems", "min items"),
                      ("maxItems", "max items"), ("minProperties", "min properties"), ("minLength", "min length"),
                      ("maxLength", "max length")):
        if key in schema:
            parts.append(f"{word} {schema[key]}")
    if "default" in schema and schema["default"] is not None:
        default = schema["default"]
        parts.append(f"default `{str(default).lower() if isinstance(default, bool) else default}`")
    return "; ".join(parts)


def _properties_table(schema: dict[str, Any]) -> list[str]:
    properties = schema.get("properties", {})
    if not properties:
        return []
    required = set(schema.get("required", []))
    lines = ["| field | type | required | constraints | description |", "|---|---|---|---|---|"]
    for name, prop in properties.items():
        lines.append(
            f"| `{name}` | {_cell(type_of(prop))} | {'yes' if name in required else 'no'} "
            f"| {_cell(constraints(prop))} | {_text(prop.get('description', ''))} |"
        )
    return lines


def _response_body(response: dict[str, Any]) -> str:
    content = response.get("content", {})
    if not content:
        return ""
    if "application/json" in content:
        schema = content["application/json"].get("schema", {})
        data = schema.get("properties", {}).get("data")
        if data is None:
            return "JSON"
        return f"`data`: {type_of(data)}" if data else "envelope"
    return ", ".join(f"`{media}`" for media in content)


def _operation(method: str, path: str, operation: dict[str, Any], document: dict[str, Any]) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", "", _text(operation.get("summary", "")), ""]
    security = operation.get("security", document.get("security", []))
    lines += ["Auth: bearer token of the node's shop." if security else "Auth: none.", ""]
    parameters = operation.get("parameters", [])
    if parameters:
        lines += ["| parameter | in | type | required | constraints |", "|---|---|---|---|---|"]
        for parameter in parameters:
            schema = parameter.get("schema", {})
            lines.append(
                f"| `{parameter['name']}` | {parameter['in']} | {_cell(type_of(schema))} "
                f"| {'yes' if parameter.get('required') else 'no'} | {_cell(constraints(schema))} |"
            )
        lines.append("")
    body = operation.get("requestBody")
    if body:
        for media, content in body.get("content", {}).items():
            schema = content.get("schema", {})
            lines += [f"Request body (`{media}`{', required' if body.get('required') else ''}):", ""]
            table = _properties_table(schema)
            lines += [*table, ""] if table else [f"{type_of(schema)}", ""]
            for name, prop in schema.get("properties", {}).items():
                if prop.get("properties"):
                    lines += [f"Fields of `{name}`:", "", *_properties_table(prop), ""]
    lines += ["| status | meaning | body |", "|---|---|---|"]
    for status, response in operation.get("responses", {}).items():
        lines.append(f"| {status} | {_text(response.get('description', ''))} | {_cell(_response_body(response))} |")
    lines.append("")
    return lines


def render(document: dict[str, Any]) -> str:
    """The whole markdown page."""
    info = document["info"]
    schemes = document.get("components", {}).get("securitySchemes", {})
    lines = [
        f"# {info['title']}: HTTP API",
        "",
        "<!-- Generated by docs/gen_api.py from edge_node.api.openapi.build_document(); do not edit by hand.",
        "     Regenerate with: .venv/bin/python docs/gen_api.py -->",
        "",
        f"API version {info['version']}, OpenAPI {document['openapi']}. A running node serves the same document at",
        "`GET /api/v1/openapi.json`. The design and the flow behind these endpoints are in",
        "[architecture.md](architecture.md); what each error code means for the caller is in",
        "[troubleshooting.md](troubleshooting.md).",
        "",
        "Every JSON answer is the envelope `{success, data?, error?: {code, message, details?}}` (see",
        f"[Error](#{slug('Error')})). Authentication: "
        + ", ".join(f"`{name}` = {scheme.get('scheme', scheme.get('type'))} {scheme.get('bearerFormat', '')}".strip()
                    for name, scheme in schemes.items())
        + ", sent as `Authorization: Bearer <token>`; the token's `shop_id` must be the node's.",
        "",
        "## Endpoints",
        "",
        "| method | path | summary |",
        "|---|---|---|",
    ]
    operations = [(method, path, op) for path, item in document["paths"].items()
                  for method, op in item.items() if method in METHODS]
    for method, path, op in operations:
        anchor = slug(f"{method.upper()} {path}")
        lines.append(f"| {method.upper()} | [`{path}`](#{anchor}) | {_text(op.get('summary', ''))} |")
    lines.append("")
    for method, path, op in operations:
        lines += _operation(method, path, op, document)
    lines += ["## Schemas", ""]
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        lines += [f"### {name}", ""]
        if schema.get("description"):
            lines += [_text(schema["description"]), ""]
        table = _properties_table(schema)
        lines += [*table, ""] if table else [f"Type: {type_of(schema)} {constraints(schema)}".strip(), ""]
    return "\n".join(lines).rstrip() + "\n"


def build() -> str:
    """Render the current document of the edge node."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # run as `python docs/gen_api.py` from anywhere
    from edge_node.api.openapi import build_document

    return render(build_document())


def main(argv: list[str] | None = None) -> int:
    """Write docs/api.md, or with --check only compare."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is out of date")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = build()
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
    if args.check:
        if current != text:
            sys.stderr.write(f"{args.output} is out of date: run .venv/bin/python docs/gen_api.py\n")
            return 1
        return 0
    if current != text:
        args.output.write_text(text, encoding="utf-8")
        sys.stdout.write(f"wrote {args.output}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
