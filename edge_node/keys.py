"""Typed keys for the aiohttp application state."""

from __future__ import annotations

from aiohttp import web

from edge_node.api.ws import EventHub
from edge_node.auth import TokenVerifier
from edge_node.config import EdgeConfig
from edge_node.engines.registry import EngineSet
from edge_node.models.manager import ModelManager
from edge_node.store.db import Database
from edge_node.store.images import ImageVault
from edge_node.sync.outbox import OutboxPublisher
from edge_node.worker import JobQueue

CONFIG = web.AppKey("config", EdgeConfig)
DATABASE = web.AppKey("database", Database)
ENGINES = web.AppKey("engines", EngineSet)
QUEUE = web.AppKey("queue", JobQueue)
VERIFIER = web.AppKey("verifier", TokenVerifier)
STARTED_AT = web.AppKey("started_at", float)
EVENTS = web.AppKey("events", EventHub)
SYNC = web.AppKey("sync", OutboxPublisher)  # set only when sync.enabled
VAULT = web.AppKey("vault", ImageVault)  # stored images (new ones only when storage.store_images)
MODELS = web.AppKey("models", ModelManager)  # set only when models.updates
