"""arsync portal_rules: pure decisions over plain frozen dataclasses (standard library only).

One concept per module; no I/O, no clock (`today`/`now` are parameters), money as Decimal:

- `types`: the facts (`CompanyPolicy`, `CustomerFacts`, `InvoiceFacts`, `ContactFacts`,
  `PortalAccount`) and the public enums `Plan`, `PortalStatus`
- `customers`: active-customer filtering
- `visibility`: sent-only invoice visibility
- `balances`: balance due, past-due amount, the company's "today"
- `adjustments`: paid invoices that have a balance again
- `contacts`: splitting, normalizing, validating and deduplicating emails
- `eligibility`: portal eligibility of one contact
- `conflicts`: emails shared by several customers
- `accounts`: the `portal_accounts` rows of a company (conflicts + eligibility)
- `status`: the portal status transition table
- `tokens`, `invitations`: invitation tokens, issuing and accepting
- `request_access`: the portal's request-access decision, rate-limited, no enumeration
- `reminders`: which reminders are due, grouped per customer
- `windows`: delivery windows and when a message may be sent
"""
