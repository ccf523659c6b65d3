"""arsync portal_rules."""
