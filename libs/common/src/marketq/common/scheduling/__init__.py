"""When jobs fire: exchange calendars, cron in exchange time, schedule entries and their
overrides, the firing gate beat and the API share, and "after" chains."""
