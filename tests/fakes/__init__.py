"""Stand-ins for external programs the tests run through real client libraries."""
