from eventstream.conftest import published  # noqa: F401 - the events spy, shared
