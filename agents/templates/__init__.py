"""Chat templates shipped with mira_env.agents.families (package data, *.jinja)."""
