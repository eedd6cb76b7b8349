"""Typed keys of the aiohttp application's state."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from central_sync.announce import Announcer
from central_sync.config import CentralConfig
from central_sync.ingest import Ingest
from central_sync.kafka import KafkaRelay

ANNOUNCER = web.AppKey("announcer", Announcer)
CONFIG = web.AppKey("config", CentralConfig)
ENGINE = web.AppKey("engine", AsyncEngine)
INGEST = web.AppKey("ingest", Ingest)
RELAY = web.AppKey("relay", KafkaRelay)
STARTED_AT = web.AppKey("started_at", float)
