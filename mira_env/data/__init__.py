"""MIRA-Editing data from real editing sessions (``mira data build``) and seeded evaluation manifests.

- :mod:`mira_env.data.merge`: a session's turns -> one complex instruction, in order or shuffled;
- :mod:`mira_env.data.paraphrase`: paraphrases through any OpenAI-compatible endpoint (cached, seeded);
- :mod:`mira_env.data.build`: sessions -> records (ranking, deduplication, resume, summary);
- :mod:`mira_env.data.state`: the build's resume state (finished sessions, session keys, records repair);
- :mod:`mira_env.data.leakage`: training sessions checked against evaluation sets;
- :mod:`mira_env.data.manifest`: the shipped evaluation manifests (``manifests/*.json``).

Sessions are read by :mod:`mira_env.sessions`, benchmarks by :mod:`mira_env.tasks.benchmarks`. Nothing here
imports torch; ranking with a reward lives in :mod:`mira_env.rewards.ranking` (a layer above).
"""
