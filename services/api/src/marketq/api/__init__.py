"""marketq HTTP API. The API issue fills this package."""
