"""arsync store."""
