"""train package of mira-env."""
