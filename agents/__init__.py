"""agents package of mira-env."""
