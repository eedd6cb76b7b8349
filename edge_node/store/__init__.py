"""The node's local state in one SQLite file (WAL): the job queue, results, outbox, metrics, error logs, images."""
