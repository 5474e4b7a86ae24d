"""marketq scheduler. The beat issue fills this package."""
