"""arsync mailer: portal invitations and invoice reminders, through an outbox.

- `mails`: the input dataclasses (`Sender`, `InvitationMail`, `ReminderMail`, `ReminderLine`)
- `environment`, `templates/`: Jinja2 templates, overridable per company
- `render`: `EmailMessage` building with a stable Message-ID
- `outbox`: `enqueue` in the caller's transaction
- `claim`, `dispatch`, `preview`: deliver what is due; dry runs
- `admin`: counts, resend, drop
- `outgoing`, `transports`, `smtp`, `results`, `retry`: delivery and its error handling
"""
