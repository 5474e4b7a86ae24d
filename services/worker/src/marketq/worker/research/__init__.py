"""The research workflow's computations, pure functions on frames (no database, no Celery).

The catalog jobs in ``marketq.worker.jobs.research`` read stored data, call these and
write the results; keeping the arithmetic here lets the tests check it against
independent references.
"""
