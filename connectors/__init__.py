"""arsync connectors."""
