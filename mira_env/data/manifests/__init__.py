"""Shipped evaluation manifests (JSON files beside this module); read them with :mod:`mira_env.data.manifest`."""
