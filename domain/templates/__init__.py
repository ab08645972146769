"""Message templates written by staff: their shape, safe rendering, validation and locale selection."""
