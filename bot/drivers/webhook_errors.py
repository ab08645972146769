"""The error every inbound parser raises when a provider's payload is not shaped as documented."""

from __future__ import annotations


class MalformedWebhook(ValueError):
    """A webhook body that does not match the provider's documented structure.

    Webhook routes answer 400 on this error instead of 500, so a provider does not keep retrying
    a payload that will never parse.
    """
