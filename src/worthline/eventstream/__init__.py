"""Live events: the event log, delivery after commit, and server-sent event streams."""
