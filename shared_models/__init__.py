"""Pydantic models shared by the edge node and the central service. No I/O lives here."""
