"""Small helpers that several apps use, one module per job: spreadsheet-safe CSV cells, search
terms, log redaction, the client IP, bulk SQL, attempt counters. They know nothing of the
project's models."""
