"""Pure rules of the reserve: no I/O, no framework, no SQL. Testable on their own."""
