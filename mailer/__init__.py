"""arsync mailer."""
