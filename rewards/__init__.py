"""rewards package of mira-env."""
