"""mira_env.redact: registered secrets, URL credentials, auth headers, key-like strings, exception chains."""

from __future__ import annotations

import pytest

from mira_env.redact import clear_secrets, error_text, redact, redact_obj, register_secret


@pytest.fixture(autouse=True)
def _fresh():
    clear_secrets()
    yield
    clear_secrets()


@pytest.mark.parametrize("text, expected", [
    ("https://user:pw@host:8000/v1", "https://***@host:8000/v1"),
    ("Authorization: Bearer abc.def-123", "Authorization: Bearer ***"),
    ("{'authorization': 'Basic dXNlcjpwYXNz'}", "{'authorization': 'Basic ***'}"),
    ("used key sk-proj-abcdefghijkl0123 here", "used key *** here"),
    ("hf_abcdefghijklmnop", "***"),
    ("GET /x?api_key=abcd1234&page=2", "GET /x?api_key=***&page=2"),
    ('{"password": "hunter22"}', '{"password": "***"}'),
    ("max_tokens=512 and plain text", "max_tokens=512 and plain text"),
])
def test_patterns(text, expected):
    assert redact(text) == expected


def test_registered_secret_is_masked_everywhere():
    register_secret("plain-looking-value")
    assert redact("x plain-looking-value y") == "x *** y"


def test_short_secret_refused_and_empty_ignored():
    with pytest.raises(ValueError, match="secret too short to redact safely"):
        register_secret("ab")
    register_secret("")
    assert redact("ab") == "ab"


def test_redact_obj_recurses_and_masks_secret_keys():
    register_secret("s3cr3t-value")
    obj = {"api_key": "anything", "headers": {"Authorization": "Bearer zz"}, "n": 3,
           "items": ["s3cr3t-value", ("https://a:b@h",)]}
    assert redact_obj(obj) == {"api_key": "***", "headers": {"Authorization": "***"}, "n": 3,
                               "items": ["***", ("https://***@h",)]}
    assert obj["api_key"] == "anything"  # a copy


def test_error_text_walks_the_chain():
    register_secret("tok-123456")
    try:
        try:
            raise ConnectionError("refused with tok-123456")
        except ConnectionError as inner:
            raise RuntimeError("editor call failed") from inner
    except RuntimeError as exc:
        assert error_text(exc) == "RuntimeError: editor call failed <- caused by: ConnectionError: refused with ***"
