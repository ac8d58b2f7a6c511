"""Balance snapshots: immutable point-in-time captures of an account's balance."""
