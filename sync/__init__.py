"""arsync sync."""
