"""The Slack side of live chat in threads, without Slack: what is posted, what an event means, what is sent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.slack.threads import echo_blocks, echo_text, root_blocks, shown_fields, thread_message_of, turn_text
from domain.conversations.slack_threads import (
    DeliveryEcho,
    ThreadCard,
    ThreadFile,
    ThreadTurn,
    note_text,
    team_channels,
)
from domain.vocabulary import ChatStatus, MessageStatus
from switchboard.chat_threads import plain_text

CARD = ThreadCard(
    chat_id=42,
    channel="whatsapp",
    status=ChatStatus.OPEN,
    customer_id=7,
    customer_name="Ana <b>Ruiz</b>",
    customer_phone="+4915112345678",
    customer_email="ana.ruiz@example.com",
    assignee=None,
    subject=None,
)
AT = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def test_the_root_masks_contact_details_unless_the_business_shows_them() -> None:
    _, masked = root_blocks(CARD, "https://sb.example", shown_fields("name"))
    text = masked[0]["text"]["text"]
    assert "Ana &lt;b&gt;Ruiz&lt;/b&gt;" in text  # customer text never becomes Slack markup
    assert "+49 151 ••• 5678" in text and "a•••@example.com" in text and "12345678" not in text
    assert "<https://sb.example/communication/chat/42|Open in Switchboard>" in text
    _, full = root_blocks(CARD, "https://sb.example", shown_fields("name, phone,email,bogus"))
    assert "+4915112345678" in full[0]["text"]["text"] and "ana.ruiz@example.com" in full[0]["text"]["text"]
    _, anonymous = root_blocks(CARD, "https://sb.example", shown_fields(""))
    assert "Customer 7" in anonymous[0]["text"]["text"] and "Ruiz" not in anonymous[0]["text"]["text"]


def test_the_root_offers_the_moves_the_conversation_can_make() -> None:
    def buttons(status: ChatStatus) -> list[str]:
        card = ThreadCard(**{**CARD.__dict__, "status": status})
        return [element["value"] for element in root_blocks(card, "", {"name"})[1][1]["elements"]]

    assert buttons(ChatStatus.OPEN) == ["chat assign 42 to me", "chat resolve 42", "chat snooze 42 for 2h"]
    assert buttons(ChatStatus.SNOOZED) == ["chat assign 42 to me", "chat resolve 42"]
    assert buttons(ChatStatus.CLOSED) == ["chat reopen 42"]


def test_the_root_changes_only_when_its_status_or_assignee_does() -> None:
    assigned = ThreadCard(**{**CARD.__dict__, "assignee": "Lena"})
    renamed = ThreadCard(**{**CARD.__dict__, "customer_name": "Ana R."})
    assert CARD.state != assigned.state and CARD.state == renamed.state


def test_turns_say_who_wrote_and_notes_say_they_stay_inside() -> None:
    def said(author: str, is_note: bool = False) -> str:
        return turn_text(ThreadTurn(1, 42, author, "Lena", "a <b> & c", is_note, AT), CARD, {"name"})

    assert said("customer") == "*Ana &lt;b&gt;Ruiz&lt;/b&gt;*: a &lt;b&gt; &amp; c"
    assert said("staff") == "*Lena* replied from the web: a &lt;b&gt; &amp; c"
    assert said("staff", is_note=True).startswith(":memo: *Note by Lena* (not sent to the customer)")
    assert said("system") == "_a &lt;b&gt; &amp; c_"


def test_a_failed_delivery_is_explained_in_words() -> None:
    window = DeliveryEcho(1, 42, MessageStatus.FAILED, "Re-engagement message", "whatsapp", 7, "131047")
    assert "outside WhatsApp's 24-hour window" in echo_text(window)
    text, button = echo_blocks(window, echo_text(window))
    assert "Once they write back, send your reply again." in text["text"]["text"]
    assert button["elements"][0]["value"] == "send whatsapp to #7 template chat_follow_up"
    other = DeliveryEcho(1, 42, MessageStatus.FAILED, "Number unreachable", "whatsapp", 7, "131026")
    assert echo_text(other) == ":warning: Not delivered by WhatsApp: Number unreachable."
    assert len(echo_blocks(other, echo_text(other))) == 1  # no template button: it would not help
    unknown = DeliveryEcho(1, 42, MessageStatus.FAILED, None, "sms")
    assert echo_text(unknown) == ":warning: Not delivered by SMS: the provider gave no reason."
    assert (
        echo_text(DeliveryEcho(1, 42, MessageStatus.READ, None, "whatsapp")) == ":eyes: Read by the customer."
    )


def test_only_a_persons_reply_in_a_channel_thread_is_a_thread_message() -> None:
    reply = {
        "type": "message",
        "channel": "C1",
        "channel_type": "channel",
        "user": "U1",
        "text": "On my way",
        "ts": "1800000000.000200",
        "thread_ts": "1800000000.000100",
        "parent_user_id": "UBOT",
    }
    message = thread_message_of(reply, "UBOT", "T1")
    assert message is not None and message.root_is_ours and message.team_id == "T1"
    assert thread_message_of({**reply, "parent_user_id": "U9"}, "UBOT") is not None
    assert not thread_message_of({**reply, "parent_user_id": "U9"}, "UBOT").root_is_ours  # type: ignore[union-attr]
    assert thread_message_of({**reply, "thread_ts": reply["ts"]}, "UBOT") is None  # the root itself
    assert thread_message_of({**reply, "bot_id": "B1"}, "UBOT") is None
    assert thread_message_of({**reply, "subtype": "channel_join"}, "UBOT") is None
    # "Also send to #channel" is still a reply; a reply with a file is one the desk must refuse in words.
    assert thread_message_of({**reply, "subtype": "thread_broadcast"}, "UBOT") is not None
    with_file = thread_message_of({**reply, "subtype": "file_share", "files": [{"id": "F1"}]}, "UBOT")
    assert with_file is not None and with_file.has_files and with_file.files == ()  # nothing to download
    listed = {
        "id": "F2",
        "name": "scan.pdf",
        "mimetype": "application/pdf",
        "size": 2048,
        "url_private": "https://files.slack.com/files-pri/T1-F2/scan.pdf",
        "url_private_download": "https://files.slack.com/files-pri/T1-F2/download/scan.pdf",
    }
    shared = thread_message_of({**reply, "subtype": "file_share", "files": [listed, "junk"]}, "UBOT")
    assert shared is not None and shared.files == (
        ThreadFile(
            "scan.pdf", "application/pdf", "https://files.slack.com/files-pri/T1-F2/download/scan.pdf", 2048
        ),
    )
    assert thread_message_of({**reply, "channel_type": "im"}, "UBOT") is None
    assert thread_message_of({k: v for k, v in reply.items() if k != "thread_ts"}, "UBOT") is None


def test_the_note_prefix_is_found_in_any_case_and_the_customer_reads_plain_text() -> None:
    assert note_text("  NOTE: call her back", "note:") == "call her back"
    assert note_text("Notes are ready", "note:") is None
    assert note_text("note:", "note:") == ""
    assert note_text("anything", "") is None
    assert plain_text("Hi <@U123>, see <https://x.example/a|the map> &amp; <mailto:a@b.c|a@b.c> &lt;3") == (
        "Hi , see the map (https://x.example/a) & a@b.c <3"
    )
    assert plain_text("<https://x.example>") == "https://x.example"


def test_a_teams_conversations_go_to_its_own_channel_and_the_rest_to_the_default() -> None:
    channel_for = team_channels("C0LIVECHAT", "BER=C0BERLIN, lon = #london-chat,broken,=C0X")
    assert channel_for(ThreadCard(**{**CARD.__dict__, "team": "ber"})) == "C0BERLIN"
    assert channel_for(ThreadCard(**{**CARD.__dict__, "team": "LON"})) == "#london-chat"
    assert channel_for(ThreadCard(**{**CARD.__dict__, "team": "VIE"})) == "C0LIVECHAT"
    assert channel_for(CARD) == "C0LIVECHAT"  # a customer with no home clinic


@pytest.mark.parametrize(
    ("status", "body", "raised"),
    [
        (200, {"ok": False, "error": "is_archived"}, "PostRefused"),
        (200, {"ok": False, "error": "channel_not_found"}, "PostRefused"),
        (200, {"ok": False, "error": "invalid_blocks"}, "PostRefused"),
        # About this post alone, not said to be final: tried again, the others go on.
        (200, {"ok": False, "error": "invalid_arguments"}, "PostNotTaken"),
        # Holding every post alike: the pass stops.
        (429, {"ok": False, "error": "ratelimited"}, "SlackApiError"),
        (200, {"ok": False, "error": "rate_limited"}, "SlackApiError"),
        (200, {"ok": False, "error": "invalid_auth"}, "SlackApiError"),
        (200, {"ok": False, "error": "team_added_to_org"}, "SlackApiError"),
        (502, "<html>502 Bad Gateway</html>", "SlackApiError"),  # a proxy's page, not Slack's JSON
    ],
)
async def test_an_echo_slack_refuses_is_dropped_given_back_or_holds_the_pass_as_the_refusal_says(
    status: int, body: object, raised: str
) -> None:
    from types import SimpleNamespace

    from slack_sdk.errors import SlackApiError

    from bot.slack.threads import SlackThreadPoster

    class Refusing:
        async def chat_postMessage(self, **_: object) -> None:
            raise SlackApiError("refused", SimpleNamespace(data=body, status_code=status))

    poster = SlackThreadPoster(Refusing(), "https://switchboard.example", ())  # type: ignore[arg-type]
    echo = DeliveryEcho(1, 42, MessageStatus.DELIVERED, None, "sms")
    with pytest.raises(Exception) as caught:
        await poster.post_echo("C1", "1.2", echo, CARD)
    assert type(caught.value).__name__ == raised
