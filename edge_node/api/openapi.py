"""The OpenAPI 3.1 document served at /api/v1/openapi.json; tests check it against the route table."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from edge_node import __version__
from shared_models.errors import ErrorCode
from shared_models.ocr import Barcode, DocumentType, Language, Line, StructuredFields, Word

_REF = "#/components/schemas/"


def _envelope(data_schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["success"],
        "properties": {"success": {"type": "boolean"}, "data": data_schema, "error": {"$ref": _REF + "Error"}},
    }


def _json(description: str, data_schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _envelope(data_schema)}}}


_ERRORS = {
    "400": _json("Invalid request or image (VALIDATION_ERROR, INVALID_IMAGE)", {}),
    "401": _json("Missing, malformed, forged or expired token (UNAUTHORIZED)", {}),
    "403": _json("Token of another shop, or a role that may not do this (FORBIDDEN)", {}),
    "413": _json("Upload larger than MAX_IMAGE_SIZE_MB (PAYLOAD_TOO_LARGE)", {}),
    "415": _json("Not an image format the node reads (INVALID_IMAGE)", {}),
    "422": _json("Blank or unreadable image (LOW_QUALITY)", {}),
    "429": _json("Queue full or rate limit reached (QUOTA_EXCEEDED), with Retry-After", {}),
    "500": _json("Engine failure (MODEL_ERROR)", {}),
    "503": _json("Storage failing or shutting down (SERVICE_UNAVAILABLE)", {}),
    "504": _json("Processing took too long (TIMEOUT)", {}),
}

_OPTION_PROPERTIES: dict[str, Any] = {
    "type": {"type": "string", "enum": [t.value for t in DocumentType], "default": "product"},
    "confidence_threshold": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.8},
    "extract_barcodes": {"type": "boolean", "default": True},
    "language": {"type": "string", "enum": [lang.value for lang in Language], "default": "en"},
}


#: Sent on every response of the rate-limited /api/v1/ocr/ endpoints (the tighter of the user and shop quotas).
_RATE_LIMIT_HEADERS: dict[str, Any] = {
    "X-RateLimit-Limit": {"description": "Requests allowed in the window", "schema": {"type": "integer"}},
    "X-RateLimit-Remaining": {"description": "Requests left in the window", "schema": {"type": "integer"}},
    "X-RateLimit-Reset": {"description": "Seconds until the oldest counted request leaves the window",
                          "schema": {"type": "integer"}},
}
_ERRORS["429"]["headers"] = {
    "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}, **_RATE_LIMIT_HEADERS,
}
_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _multipart(file_field: str, many: bool) -> dict[str, Any]:
    file_schema: dict[str, Any] = {"type": "string", "format": "binary"}
    if many:
        file_schema = {"type": "array", "items": file_schema, "minItems": 1, "maxItems": 10}
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [file_field],
                    "properties": {file_field: file_schema, **_OPTION_PROPERTIES},
                }
            }
        },
    }


RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "text", "confidence", "structured", "barcodes", "processing_time_ms", "model_used"],
    "properties": {
        "id": {"type": "string"},
        "job_id": {"type": "string"},
        "status": {"type": "string"},
        "text": {"type": "string"},
        "confidence": {"type": "number"},
        "structured": {"$ref": _REF + "StructuredFields"},
        "barcodes": {"type": "array", "items": {"$ref": _REF + "Barcode"}},
        "processing_time_ms": {"type": "number"},
        "model_used": {"type": "string"},
        "lines": {"type": "array", "items": {"$ref": _REF + "Line"}},
        "words": {"type": "array", "items": {"$ref": _REF + "Word"}},
        "stage_times_ms": {"type": "object", "additionalProperties": {"type": "number"}},
        "cached": {"type": "boolean"},
    },
}

JOB_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["job_id", "status"],
    "properties": {
        "job_id": {"type": "string"},
        "status": {"type": "string", "enum": ["queued", "processing", "completed", "failed", "dead"]},
        "result": {"$ref": _REF + "OcrResult"},
        "error": {"$ref": _REF + "Error"},
    },
}


AUDIT_ENTRY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "at", "job_id", "user_id", "role", "action", "reason"],
    "properties": {
        "id": {"type": "integer"},
        "at": {"type": "string", "format": "date-time", "description": "When (UTC)"},
        "job_id": {"type": "string", "description": "Which job's image"},
        "user_id": {"type": "string", "description": "Who (`worker` for the node's own reads)"},
        "role": {"type": "string", "description": "admin, clerk, or system for the node itself"},
        "action": {"type": "string", "enum": ["read", "delete"]},
        "reason": {"type": "string", "description": "Why"},
    },
}


def _components() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in (StructuredFields, Barcode, Line, Word):
        schema = model.model_json_schema(ref_template=_REF + "{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    schemas["OcrResult"] = RESULT_SCHEMA
    schemas["Job"] = JOB_SCHEMA
    schemas["AuditEntry"] = AUDIT_ENTRY_SCHEMA
    schemas["Error"] = {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "enum": [c.value for c in ErrorCode]},
            "message": {"type": "string"},
            "details": {"type": "object"},
        },
    }
    return schemas


def build_document() -> dict[str, Any]:
    """The whole OpenAPI document."""
    secured: list[dict[str, list[str]]] = [{"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "ZakPOS OCR edge node", "version": __version__},
        "servers": [{"url": "/"}],
        "components": {
            "schemas": _components(),
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "HS256 (shared secret) or EdDSA (Ed25519) JWT; a kid header selects a rotated key. "
                "Claims: sub, shop_id (this node's shop), exp, role (clerk | admin).",
            }},
        },
        "paths": {
            "/api/v1/ocr/process": {
                "post": {
                    "summary": "OCR one image and wait for the result",
                    "security": secured,
                    "parameters": [{"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}],
                    "requestBody": _multipart("image", many=False),
                    "responses": {"200": _json("The result", {"$ref": _REF + "OcrResult"}), **_ERRORS},
                }
            },
            "/api/v1/ocr/process/async": {
                "post": {
                    "summary": "Queue one image; poll the job or watch the WebSocket",
                    "security": secured,
                    "parameters": [{"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}],
                    "requestBody": _multipart("image", many=False),
                    "responses": {"202": _json("Queued", {"$ref": _REF + "Job"}), **_ERRORS},
                }
            },
            "/api/v1/ocr/batch": {
                "post": {
                    "summary": "OCR up to 10 images with shared options",
                    "security": secured,
                    "requestBody": _multipart("images", many=True),
                    "responses": {"200": _json("Per-image outcomes", {"type": "object"}), **_ERRORS},
                }
            },
            "/api/v1/ocr/jobs": {
                "get": {
                    "summary": "Recent jobs of the caller's shop",
                    "security": secured,
                    "parameters": [
                        {"name": "status", "in": "query", "schema": {"type": "string", "enum": [
                            "queued", "processing", "completed", "failed", "dead"]}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                    ],
                    "responses": {"200": _json("Jobs", {"type": "object"}), "400": _ERRORS["400"],
                                  "401": _ERRORS["401"], "403": _ERRORS["403"]},
                }
            },
            "/api/v1/ocr/jobs/{job_id}/retry": {
                "post": {
                    "summary": "Put a dead job back in the queue (admin)",
                    "security": secured,
                    "parameters": [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {"202": _json("Queued again", {"$ref": _REF + "Job"}),
                                  "404": _json("No such job", {}), "409": _json("The job is not dead", {}),
                                  "401": _ERRORS["401"], "403": _ERRORS["403"]},
                }
            },
            "/api/v1/ocr/jobs/{job_id}/corrections": {
                "post": {
                    "summary": "Correct a completed job's structured fields; feeds model_accuracy and the export",
                    "security": secured,
                    "parameters": [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {
                            "type": "object",
                            "required": ["fields"],
                            "properties": {"fields": {
                                "type": "object", "minProperties": 1, "additionalProperties": False,
                                "description": "Corrected values; names and types of StructuredFields "
                                "(all but confidence). A field counts as right when it equals what the node returned.",
                                "properties": {
                                    name: prop for name, prop in _components()["StructuredFields"]["properties"].items()
                                    if name != "confidence"
                                },
                            }},
                        }}},
                    },
                    "responses": {
                        "200": _json("The stored correction and the accuracy it implies", {"type": "object"}),
                        "400": _ERRORS["400"], "401": _ERRORS["401"], "403": _ERRORS["403"],
                        "404": _json("No such job", {}), "409": _json("The job is not completed", {}),
                        "413": _ERRORS["413"],
                    },
                }
            },
            "/api/v1/ocr/corrections/export": {
                "get": {
                    "summary": "Labelled data set (admin): a tar of images/<job>.<ext> + labels/<job>.json + "
                    "manifest.jsonl for corrected jobs whose image is still stored",
                    "security": secured,
                    "responses": {
                        "200": {"description": "The archive, streamed",
                                "content": {"application/x-tar": {"schema": {"type": "string", "format": "binary"}}}},
                        "401": _ERRORS["401"], "403": _json("Not an admin, or a token of another shop", {}),
                    },
                }
            },
            "/": {
                "get": {
                    "summary": "The scan page for the shop's tablets (HTML; its files are under /static/)",
                    "security": [],
                    "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
                }
            },
            "/api/v1/ocr/ws": {
                "get": {
                    "summary": "WebSocket of job events (job_queued, job_started, job_progress, job_completed, "
                    "job_failed); token as ?token= or first message {\"token\": ...}",
                    "security": [],
                    "parameters": [{"name": "token", "in": "query", "schema": {"type": "string"}},
                                   {"name": "job_id", "in": "query", "schema": {"type": "string"}}],
                    "responses": {"101": {"description": "Switching to the WebSocket protocol"}},
                }
            },
            "/api/v1/ocr/jobs/{job_id}": {
                "get": {
                    "summary": "A job of the caller's shop",
                    "security": secured,
                    "parameters": [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {"200": _json("The job", {"$ref": _REF + "Job"}), "404": _json("No such job", {}),
                                  "401": _ERRORS["401"], "403": _ERRORS["403"], "429": _ERRORS["429"]},
                },
                "delete": {
                    "summary": "Delete a finished job, its stored image and its unsent results (admin)",
                    "security": secured,
                    "parameters": [_JOB_ID],
                    "responses": {
                        "200": _json("Deleted", {"type": "object", "properties": {
                            "job_id": {"type": "string"}, "deleted": {"type": "boolean"},
                            "image_deleted": {"type": "boolean"}, "unsent_results_redacted": {"type": "integer"}}}),
                        "404": _json("No such job", {}), "409": _json("The job is still queued or processing", {}),
                        "401": _ERRORS["401"], "403": _ERRORS["403"], "429": _ERRORS["429"],
                    },
                },
            },
            "/api/v1/ocr/jobs/{job_id}/image": {
                "get": {
                    "summary": "The job's stored upload, decrypted and without metadata (admin; the read is audited)",
                    "security": secured,
                    "parameters": [_JOB_ID, {"name": "reason", "in": "query", "description": "Why (audit log)",
                                             "schema": {"type": "string", "maxLength": 200}}],
                    "responses": {
                        "200": {"description": "The image", "content": {
                            "image/*": {"schema": {"type": "string", "format": "binary"}}}},
                        "404": _json("No such job, or its image is not stored (off, purged)", {}),
                        "401": _ERRORS["401"], "403": _ERRORS["403"], "429": _ERRORS["429"],
                        "503": _ERRORS["503"],
                    },
                }
            },
            "/api/v1/audit/images": {
                "get": {
                    "summary": "The image audit log of the caller's shop, newest first: who read or deleted which "
                    "stored image, when and why (admin)",
                    "security": secured,
                    "parameters": [
                        {"name": "job_id", "in": "query", "schema": {"type": "string", "maxLength": 200}},
                        {"name": "since", "in": "query", "description": "ISO 8601 time, inclusive (UTC without offset)",
                         "schema": {"type": "string"}},
                        {"name": "until", "in": "query", "description": "ISO 8601 time, exclusive (UTC without offset)",
                         "schema": {"type": "string"}},
                        {"name": "limit", "in": "query",
                         "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
                        {"name": "before_id", "in": "query", "description": "Next page: next_before_id of the last one",
                         "schema": {"type": "integer", "minimum": 1}},
                    ],
                    "responses": {
                        "200": _json("Audit entries", {"type": "object", "properties": {
                            "entries": {"type": "array", "items": {"$ref": _REF + "AuditEntry"}},
                            "count": {"type": "integer"}, "limit": {"type": "integer"},
                            "next_before_id": {"type": ["integer", "null"]}}}),
                        "400": _ERRORS["400"], "401": _ERRORS["401"],
                        "403": _json("Not an admin, or a token of another shop", {}), "503": _ERRORS["503"],
                    },
                }
            },
            "/api/v1/health": {
                "get": {
                    "summary": "Health for probes (no auth)",
                    "security": [],
                    "responses": {"200": _json("Health", {"type": "object"}), "503": _ERRORS["503"]},
                }
            },
            "/api/v1/metrics": {
                "get": {
                    "summary": "Metrics (JSON; Prometheus text with Accept: text/plain)",
                    "security": secured,
                    "responses": {"200": _json("Metrics", {"type": "object"}), "401": _ERRORS["401"],
                                  "403": _json("Not an admin, or a token of another shop", {})},
                }
            },
            "/api/v1/metrics/prometheus": {
                "get": {
                    "summary": "Metrics in the Prometheus text format",
                    "security": secured,
                    "responses": {"200": {"description": "Prometheus text", "content": {"text/plain": {}}},
                                  "401": _ERRORS["401"], "403": _json("Not an admin, or a token of another shop", {})},
                }
            },
            "/api/v1/openapi.json": {
                "get": {"summary": "This document", "security": [], "responses": {"200": {"description": "OpenAPI"}}}
            },
        },
    }


async def openapi(request: web.Request) -> web.Response:
    """GET /api/v1/openapi.json."""
    return web.json_response(build_document())
