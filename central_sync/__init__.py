"""ZakPOS OCR central service: ingests what the shop nodes sync over MQTT into PostgreSQL and Kafka."""

__version__ = "0.1.0"
