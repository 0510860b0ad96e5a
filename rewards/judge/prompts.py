"""VIEScore-style judge prompts (written for mira-env, same protocol as VIEScore / EditScore).

- SC (semantic consistency): two images (source, then edited) and the instruction; the judge returns
  ``[editing_success, overediting]``, each 0-10 (10 = instruction fully followed / nothing changed
  that should not have been). SC = min of the two, as in VIEScore.
- PQ (perceptual quality): the edited image alone; the judge returns ``[naturalness, artifacts]``,
  each 0-10 (10 = perfectly natural / no artefacts). PQ = min of the two.

Bump :data:`PROMPT_VERSION` whenever the text changes: it is part of the judge cache key.
"""

from __future__ import annotations

PROMPT_VERSION = "viescore-style-v1"

_CONTEXT = (
    "You are a meticulous evaluator of AI-edited images. Follow the rules exactly and keep the reasoning "
    "short. Answer ONLY with a JSON object of this form:\n"
    '{"score": [score1, score2], "reasoning": "..."}\n'
)

SC_PROMPT = _CONTEXT + (
    "Two images follow: the first is the ORIGINAL image, the second is the EDITED image produced by an "
    "editing model from the instruction below.\n"
    "score1 (editing success, 0-10): how completely the edited image carries out the instruction. "
    "0 = not at all, 10 = perfectly.\n"
    "score2 (over-editing, 0-10): how well everything the instruction did NOT ask to change is preserved. "
    "0 = the image was changed far beyond the instruction, 10 = only the requested change was made.\n"
    "Editing instruction: {instruction}\n"
)

PQ_PROMPT = _CONTEXT + (
    "One AI-edited image follows.\n"
    "score1 (naturalness, 0-10): does the image look natural and physically plausible "
    "(lighting, shadows, proportions, perspective)? 0 = not at all, 10 = completely.\n"
    "score2 (artifacts, 0-10): is it free of artefacts (distortions, blur, noise, seams, watermarks)? "
    "0 = full of artefacts, 10 = none.\n"
)


def sc_prompt(instruction: str) -> str:
    """The SC prompt for ``instruction`` (shown after the two images)."""
    return SC_PROMPT.replace("{instruction}", instruction)


def pq_prompt() -> str:
    """The PQ prompt (shown after the edited image)."""
    return PQ_PROMPT
