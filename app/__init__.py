"""Tasks API: a multi-user todo backend (Litestar, hand-written SQL, PostgreSQL)."""
