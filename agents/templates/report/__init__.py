"""The jinja2 templates of the HTML reports (:mod:`mira_env.agents.report`); package data, overridable per file."""
