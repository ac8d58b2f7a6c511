"""A user's portfolio: holdings per account and net worth in a chosen currency."""
