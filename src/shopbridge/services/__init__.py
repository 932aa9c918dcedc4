"""Use cases: one function per command or event, given a session (the unit of work) and what else it needs."""
