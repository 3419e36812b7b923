"""Live updates: `GET /api/events` (server-sent events) and its tickets."""
