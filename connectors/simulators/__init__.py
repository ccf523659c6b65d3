"""Local HTTP simulators of the QuickBooks Online and Xero APIs (tests, demo, benchmarks)."""
