"""Schema migrations of the node database, applied in order at start-up."""

from __future__ import annotations

import sqlite3

#: Each entry moves the schema one version up; never edit a released entry, append a new one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE ocr_processing_jobs (
        id TEXT PRIMARY KEY,
        shop_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        document_type TEXT NOT NULL,
        options TEXT NOT NULL,
        status TEXT NOT NULL,
        image_hash TEXT,
        image_size_bytes INTEGER,
        idempotency_key TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL DEFAULT 4,
        available_at REAL NOT NULL DEFAULT 0,
        lease_expires_at REAL,
        extracted_text TEXT,
        structured_data TEXT,
        barcodes TEXT,
        result TEXT,
        confidence_score REAL,
        processing_time_ms REAL,
        model_used TEXT,
        error_code TEXT,
        error_message TEXT,
        cached INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        started_at TEXT,
        completed_at TEXT
    );
    CREATE INDEX idx_jobs_status_available ON ocr_processing_jobs(status, available_at);
    CREATE INDEX idx_jobs_shop_created ON ocr_processing_jobs(shop_id, created_at);
    CREATE UNIQUE INDEX idx_jobs_idempotency ON ocr_processing_jobs(shop_id, user_id, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE TABLE ocr_error_logs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT,
        error_code TEXT NOT NULL,
        error_message TEXT NOT NULL,
        details TEXT,
        attempt INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    );
    CREATE INDEX idx_error_logs_job ON ocr_error_logs(job_id);
    CREATE TABLE ocr_model_metrics (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        model_name TEXT NOT NULL,
        metric_name TEXT NOT NULL,
        value REAL NOT NULL,
        job_id TEXT,
        recorded_at TEXT NOT NULL
    );
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE result_cache (
        key TEXT PRIMARY KEY,
        result TEXT NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE TABLE images (
        job_id TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        key_id TEXT NOT NULL,
        expires_at REAL NOT NULL
    );
    """,
    # 2: clerks' corrections of structured fields (ground truth for accuracy and the labelled export).
    """
    CREATE TABLE ocr_corrections (
        job_id TEXT PRIMARY KEY,
        shop_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        model_used TEXT,
        fields TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX idx_corrections_shop_updated ON ocr_corrections(shop_id, updated_at);
    CREATE TABLE ocr_correction_fields (
        job_id TEXT NOT NULL REFERENCES ocr_corrections(job_id) ON DELETE CASCADE,
        field TEXT NOT NULL,
        returned TEXT,
        corrected TEXT,
        correct INTEGER NOT NULL,
        PRIMARY KEY (job_id, field)
    );
    """,
    # 3: who read (or deleted) which stored image, when and why (DESIGN §7); kept after the image is purged.
    """
    CREATE TABLE image_audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL,
        shop_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        role TEXT NOT NULL,
        action TEXT NOT NULL,
        reason TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX idx_image_audit_job ON image_audit_log(job_id);
    """,
    # 4: the model-update state (edge_node.models): which bundle serves, which one it replaced, failed updates.
    """
    CREATE TABLE model_state (
        slot TEXT PRIMARY KEY,
        data TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    """,
    # 5: job retention (store/retention.py) finds old finished jobs and their metric rows without scanning.
    """
    CREATE INDEX idx_jobs_status_updated ON ocr_processing_jobs(status, updated_at);
    CREATE INDEX idx_model_metrics_job ON ocr_model_metrics(job_id);
    """,
    # 6: the outbox epoch: seqs restart at 1 in a new database, so central must tell one database from the next.
    """
    CREATE TABLE node_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    INSERT INTO node_meta (key, value)
        VALUES ('outbox_epoch', strftime('%Y%m%dT%H%M%S', 'now') || '-' || lower(hex(randomblob(8))));
    """,
]


def migrate(conn: sqlite3.Connection) -> int:
    """Apply pending migrations; returns the schema version now in force."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
        version = number
    return version
