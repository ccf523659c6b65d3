"""Account history: payments, credits, their allocations to invoices, and the statement.

`tables` holds the rows, `writes` the sync's set-based writers, `views` the public SQL
views (`portal_payments`, `portal_credits`, `portal_statement`) and `reads` what
`store.portal` offers on top of them.
"""
