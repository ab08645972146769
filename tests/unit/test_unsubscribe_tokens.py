"""Unsubscribe tokens and Telegram deep-link payloads: round trips, and forgeries refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from api.unsubscribe import read_unsubscribe_token, unsubscribe_token, unsubscribe_url
from domain.vocabulary import Channel
from providers.telegram.links import read_telegram_start_payload, telegram_start_payload
from switchboard.settings import Settings

SECRET = SecretStr("a-session-secret-for-tests-0123456789")


@given(st.integers(min_value=1, max_value=2**63 - 1), st.sampled_from(list(Channel)))
def test_a_token_names_its_customer_and_channel(customer_id: int, channel: Channel) -> None:
    token = unsubscribe_token(SECRET, customer_id, channel)
    assert read_unsubscribe_token(SECRET, token) == (customer_id, channel)
    assert read_unsubscribe_token("another-secret", token) is None


@pytest.mark.parametrize(
    "token",
    ["", ".", "abc", "abc.def", "MTpzbXM.", "MTplbWFpbA.AAAA", "Mjpl.bWFpbA", "%%%.%%%"],
)
def test_garbage_is_not_a_token(token: str) -> None:
    assert read_unsubscribe_token(SECRET, token) is None


def test_changing_the_customer_breaks_the_signature() -> None:
    token = unsubscribe_token(SECRET, 1, Channel.EMAIL)
    other = unsubscribe_token(SECRET, 2, Channel.EMAIL)
    forged = other.split(".")[0] + "." + token.split(".")[1]
    assert read_unsubscribe_token(SECRET, forged) is None


def test_the_url_is_under_the_public_url() -> None:
    settings = Settings(public_url="https://sb.example.com/", session_secret=SECRET)
    url = unsubscribe_url(settings, 42, Channel.EMAIL)
    assert url.startswith("https://sb.example.com/unsubscribe/")
    assert read_unsubscribe_token(SECRET, url.rsplit("/", 1)[1]) == (42, Channel.EMAIL)


def test_telegram_start_payloads_fit_telegram_and_resist_forgery() -> None:
    payload = telegram_start_payload(SECRET, 123456789)
    assert len(payload) <= 64 and all(c.isalnum() or c in "_-" for c in payload)
    assert read_telegram_start_payload(SECRET, payload) == 123456789
    assert read_telegram_start_payload(SECRET, payload.replace("c123456789", "c123456788")) is None
    assert read_telegram_start_payload(SECRET, "123456789") is None
    assert read_telegram_start_payload("other", payload) is None
