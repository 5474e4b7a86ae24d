"""marketq.common: settings, Celery app, job catalog, database, calendars, providers."""
