"""Classify one raw MQTT message: an accepted envelope, a bare node status, or a reject with its reason.

Pure (no I/O). Which rejects may be acked past ("skipped") is decided here:
- the identity (shop, node, seq) is trusted only when the payload's shop/node equal the topic's;
- a trusted, permanently bad message (invalid envelope or body, wrong kind, oversized, obsolete schema_version) is
  skipped: its seq counts as committed so it never blocks the node's contiguous ack;
- a NEWER schema_version than ours is not skipped: the node keeps it and resends, and an upgraded central takes it;
- no identity (malformed JSON, topic mismatch, a node under another shop's topic) means no seq is touched at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from central_sync.bodies import JobEvent, MetricsBody, ResultFields, StatusBody, metric_points
from shared_models.messages import MAX_MESSAGE_BYTES, SCHEMA_VERSION, Envelope, NodeStatus
from shared_models.model_updates import NodeErrorLog
from shared_models.topics import UpKind, parse_up_topic

#: An oversized payload up to this size is still parsed to learn its seq (so it can be skipped); larger ones are not.
IDENTIFY_LIMIT_BYTES = 8 * MAX_MESSAGE_BYTES
#: Characters of a rejected payload kept in `rejects.payload_excerpt`.
EXCERPT_CHARS = 500
#: Characters of a validation error kept in a reject reason.
REASON_CHARS = 300
#: `log_kind` of an errors body that is a node-level failure (NodeErrorLog), not a job event.
NODE_ERROR = "node_error"


@dataclass(frozen=True, slots=True)
class RawMessage:
    """An MQTT message as received; `generation` is the connection it arrived on (its PUBACK goes there)."""

    topic: str
    payload: bytes
    mid: int = 0
    qos: int = 0
    retain: bool = False
    generation: int = 0


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid envelope and its parsed body."""

    raw: RawMessage
    envelope: Envelope
    body: JobEvent | NodeErrorLog | MetricsBody | StatusBody
    result: ResultFields | None = None


@dataclass(frozen=True, slots=True)
class StatusReport:
    """A bare NodeStatus (the retained status or the last will): updates `nodes`, has no seq, needs no ack."""

    raw: RawMessage
    status: NodeStatus


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message not written as data. `seq` is set only when the identity is trusted; `skip` acks past it."""

    raw: RawMessage
    reason: str
    node_id: str | None = None
    shop_id: str | None = None
    seq: int | None = None
    skip: bool = False

    @property
    def excerpt(self) -> str:
        """The start of the payload, for the operator."""
        text = self.raw.payload[: EXCERPT_CHARS * 4].decode("utf-8", "replace")[:EXCERPT_CHARS]
        return text.replace("\x00", "\ufffd")


Classified = Accepted | StatusReport | Rejected


def _short(err: ValidationError) -> str:
    text = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in err.errors())
    return text[:REASON_CHARS]


def _trusted_seq(doc: Any, shop_id: str, node_id: str) -> int | None:
    """The payload's seq when its shop/node are the topic's, else None."""
    if not isinstance(doc, dict) or doc.get("shop_id") != shop_id or doc.get("node_id") != node_id:
        return None
    seq = doc.get("seq")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 1 else None


def _reject(raw: RawMessage, reason: str, doc: Any, shop_id: str, node_id: str, *, skip: bool = True) -> Rejected:
    """A reject that keeps the identity (and may skip) when the payload's shop/node match the topic."""
    seq = _trusted_seq(doc, shop_id, node_id)
    if seq is None:
        return Rejected(raw, reason, node_id=node_id, shop_id=shop_id)
    return Rejected(raw, reason, node_id=node_id, shop_id=shop_id, seq=seq, skip=skip)


def _strip_nul(value: Any) -> Any:
    """PostgreSQL text and JSONB cannot hold U+0000: drop it from every string."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_strip_nul(k): _strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_nul(v) for v in value]
    return value


def _parse(payload: bytes) -> Any:
    doc = json.loads(payload)
    # Only a JSON escape can carry U+0000 (a raw NUL byte is invalid JSON), so this check is cheap and exact.
    return _strip_nul(doc) if b"\\u0000" in payload else doc


def classify(raw: RawMessage) -> Classified:
    """Validate one message against its topic and the protocol."""
    parsed_topic = parse_up_topic(raw.topic)
    if parsed_topic is None:
        return Rejected(raw, "not an upstream topic")
    shop_id, node_id, topic_kind = parsed_topic
    size = len(raw.payload)
    if size > MAX_MESSAGE_BYTES:
        reason = f"oversized: {size} bytes > {MAX_MESSAGE_BYTES}"
        doc: Any = None
        if size <= IDENTIFY_LIMIT_BYTES:
            try:
                doc = _parse(raw.payload)
            except ValueError:
                doc = None
        return _reject(raw, reason, doc, shop_id, node_id)
    try:
        doc = _parse(raw.payload)
    except ValueError as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return Rejected(raw, f"malformed JSON: {str(err)[:REASON_CHARS]}", node_id=node_id, shop_id=shop_id)
    if not isinstance(doc, dict):
        return Rejected(raw, "malformed JSON: not an object", node_id=node_id, shop_id=shop_id)
    if topic_kind is UpKind.STATUS and "seq" not in doc:
        return _bare_status(raw, doc, shop_id, node_id)
    version = doc.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version != SCHEMA_VERSION:
        reason = f"unknown schema_version {version} (this service speaks {SCHEMA_VERSION})"
        return _reject(raw, reason, doc, shop_id, node_id, skip=version < SCHEMA_VERSION)
    try:
        envelope = Envelope.model_validate(doc)
    except ValidationError as err:
        return _reject(raw, f"invalid envelope: {_short(err)}", doc, shop_id, node_id)
    if envelope.shop_id != shop_id or envelope.node_id != node_id:
        reason = (
            f"envelope {envelope.shop_id}/{envelope.node_id} differs from topic {shop_id}/{node_id}"
        )
        return Rejected(raw, reason, node_id=node_id, shop_id=shop_id)
    if envelope.kind is not topic_kind:
        return _reject(raw, f"kind {envelope.kind.value} on a {topic_kind.value} topic", doc, shop_id, node_id)
    return _body(raw, envelope, doc)


def _body(raw: RawMessage, envelope: Envelope, doc: dict[str, Any]) -> Classified:
    shop_id, node_id = envelope.shop_id, envelope.node_id
    try:
        if envelope.kind is UpKind.ERRORS and envelope.body.get("log_kind") == NODE_ERROR:
            return Accepted(raw, envelope, NodeErrorLog.model_validate(envelope.body))
        if envelope.kind in (UpKind.RESULTS, UpKind.ERRORS):
            event = JobEvent.model_validate(envelope.body)
            if event.shop_id is not None and event.shop_id != shop_id:
                return _reject(raw, f"job of shop {event.shop_id} sent as shop {shop_id}", doc, shop_id, node_id)
            fields = ResultFields.model_validate(event.result) if event.result is not None else None
            return Accepted(raw, envelope, event, fields)
        if envelope.kind is UpKind.METRICS:
            return Accepted(raw, envelope, MetricsBody.model_validate(metric_points(envelope.body)))
        return Accepted(raw, envelope, StatusBody.model_validate(envelope.body))
    except ValidationError as err:
        return _reject(raw, f"invalid {envelope.kind.value} body: {_short(err)}", doc, shop_id, node_id)


def _bare_status(raw: RawMessage, doc: dict[str, Any], shop_id: str, node_id: str) -> Classified:
    try:
        status = NodeStatus.model_validate(doc)
    except ValidationError as err:
        return Rejected(raw, f"invalid node status: {_short(err)}", node_id=node_id, shop_id=shop_id)
    if status.shop_id != shop_id or status.node_id != node_id:
        reason = f"status of {status.shop_id}/{status.node_id} differs from topic {shop_id}/{node_id}"
        return Rejected(raw, reason, node_id=node_id, shop_id=shop_id)
    return StatusReport(raw, status)
