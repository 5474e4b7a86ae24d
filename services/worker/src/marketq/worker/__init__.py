"""marketq.worker: job implementations and the per-queue worker entrypoint."""
