"""Job implementations, one module per domain. Importing this package registers them all."""

from marketq.worker.jobs import (  # noqa: F401
    analytics,
    calendar_events,
    company,
    economy,
    imports,
    market,
    news,
    operations,
    performance,
    pipelines,
    portfolio,
    research,
    webhooks,
)
