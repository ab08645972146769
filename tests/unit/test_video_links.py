"""Video rooms and links: Jitsi's token bound to one room and the window, the plain link, what /v/TOKEN
decides before, inside and after the window, and what a join does to a consultation's status."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from domain.video.joins import attendance_after_join
from domain.video.links import (
    Attendance,
    ConsultationAtLink,
    LinkOutcome,
    decide_link,
    looks_like_token,
    unknown_link,
)
from domain.video.model import (
    CLOSES_AFTER,
    OPENS_BEFORE,
    TOKEN_MARGIN,
    ConsultationStatus,
    Participant,
    Window,
)
from domain.video.waiting_room import WaitingPatient, waiting_words, worth_telling
from providers.video.jitsi import JitsiRooms
from providers.video.link import PlainLinkRooms
from providers.video.rooms import video_rooms_from
from switchboard.settings import ConfigurationError, Settings

SECRET = "a-jitsi-app-secret-of-thirty-two-bytes-or-more"
#: 10:30 in Berlin (winter, CET), 30 minutes.
START = datetime(2026, 12, 8, 9, 30, tzinfo=UTC)
WINDOW = Window.of(START, 30)
ROOMS = JitsiRooms("https://meet.example.org/", "switchboard", SECRET, "meet.example.org")


def decode(url: str, *, room: str, secret: str = SECRET) -> dict[str, object]:
    assert url.startswith(f"https://meet.example.org/{room}?jwt=")
    token = url.split("?jwt=", 1)[1]
    return jwt.decode(
        token,
        secret,
        algorithms=["HS256"],
        audience="switchboard",
        issuer="switchboard",
        options={"verify_nbf": False, "verify_exp": False},
    )


def test_the_jitsi_token_names_this_room_the_app_and_the_domain() -> None:
    claims = decode(ROOMS.join_url("nw-abc123", Participant.PATIENT, "Anna Meyer", WINDOW), room="nw-abc123")
    assert claims["aud"] == "switchboard" and claims["iss"] == "switchboard"
    assert claims["sub"] == "meet.example.org"
    assert claims["room"] == "nw-abc123"  # exactly this room, never "*"
    assert claims["context"] == {"user": {"name": "Anna Meyer", "moderator": False}}


def test_the_token_is_valid_from_the_window_opening_to_its_close_with_a_margin() -> None:
    claims = decode(ROOMS.join_url("r1", Participant.PATIENT, "Anna", WINDOW), room="r1")
    assert claims["nbf"] == int((START - OPENS_BEFORE - TOKEN_MARGIN).timestamp())
    assert claims["exp"] == int((START + timedelta(minutes=30) + CLOSES_AFTER + TOKEN_MARGIN).timestamp())
    now = datetime.now(UTC)
    for starts, refused in (
        (now + timedelta(hours=2), jwt.ImmatureSignatureError),
        (now - timedelta(hours=2), jwt.ExpiredSignatureError),
    ):
        token = ROOMS.join_url("r1", Participant.PATIENT, "Anna", Window.of(starts, 30)).split("?jwt=")[1]
        with pytest.raises(refused):
            jwt.decode(token, SECRET, algorithms=["HS256"], audience="switchboard")
    current = ROOMS.join_url("r1", Participant.PATIENT, "Anna", Window.of(now, 30)).split("?jwt=")[1]
    assert jwt.decode(current, SECRET, algorithms=["HS256"], audience="switchboard")["room"] == "r1"


def test_only_the_clinician_is_moderator() -> None:
    clinician = decode(ROOMS.join_url("r1", Participant.CLINICIAN, "Dr Clara Weiss", WINDOW), room="r1")
    assert clinician["context"] == {"user": {"name": "Dr Clara Weiss", "moderator": True}}


def test_a_token_signed_with_another_secret_is_refused() -> None:
    forged = JitsiRooms("https://meet.example.org", "switchboard", "x" * 40, "meet.example.org")
    with pytest.raises(jwt.InvalidSignatureError):
        decode(forged.join_url("r1", Participant.CLINICIAN, "Mallory", WINDOW), room="r1")


def test_room_names_are_escaped_into_the_path() -> None:
    assert ROOMS.room_url("a b/c") == "https://meet.example.org/a%20b%2Fc"


def test_the_plain_link_has_no_token_and_fills_in_the_room() -> None:
    fixed = PlainLinkRooms("https://zoom.example/j/123")
    assert fixed.join_url("r1", Participant.CLINICIAN, "Dr", WINDOW) == "https://zoom.example/j/123"
    templated = PlainLinkRooms("https://whereby.example/{room}")
    assert templated.join_url("nw-7", Participant.PATIENT, "Anna", WINDOW) == "https://whereby.example/nw-7"
    assert templated.room_url("nw-7") == "https://whereby.example/nw-7"


def test_rooms_are_built_from_settings_and_missing_ones_are_named() -> None:
    built = video_rooms_from(
        Settings(
            jitsi_url="https://meet.example.org", jitsi_app_secret=SECRET, jitsi_domain="meet.example.org"
        )  # type: ignore[arg-type]
    )
    assert isinstance(built, JitsiRooms) and built.domain == "meet.example.org"
    sandboxed = video_rooms_from(Settings(sandbox=True, sandbox_port=8125))
    assert sandboxed.room_url("r") == "http://127.0.0.1:8125/video/r"
    with pytest.raises(ConfigurationError, match="SWITCHBOARD_JITSI_URL is empty"):
        video_rooms_from(Settings(sandbox=False, jitsi_url=""))
    with pytest.raises(ConfigurationError, match="SWITCHBOARD_VIDEO_LINK_URL is empty"):
        video_rooms_from(Settings(video_provider="link"))
    assert isinstance(
        video_rooms_from(Settings(video_provider="link", video_link_url="https://x/{room}")), PlainLinkRooms
    )


def test_production_wants_a_jitsi_secret_of_its_own_only_when_it_uses_jitsi() -> None:
    jitsi = Settings(environment="production", sandbox=False)
    assert "SWITCHBOARD_JITSI_APP_SECRET" in jitsi.sandbox_secrets_in_use()
    link = Settings(environment="production", sandbox=False, video_provider="link")
    assert "SWITCHBOARD_JITSI_APP_SECRET" not in link.sandbox_secrets_in_use()
    copied = Settings(environment="production", sandbox=False, jitsi_url="http://127.0.0.1:8025/video")
    assert "SWITCHBOARD_JITSI_URL" in copied.sandbox_endpoints_in_use()


def at_link(
    status: ConsultationStatus = ConsultationStatus.SCHEDULED,
    who: Participant = Participant.PATIENT,
    timezone: str = "Europe/Berlin",
) -> ConsultationAtLink:
    return ConsultationAtLink(
        consultation_id=7,
        who=who,
        window=WINDOW,
        room_name="nw-7",
        display_name="Anna",
        timezone=timezone,
        attendance=Attendance(status),
    )


def test_before_the_window_the_page_says_when_it_opens_in_the_readers_zone() -> None:
    early = decide_link(at_link(), WINDOW.opens_at - timedelta(seconds=1))
    assert early.outcome is LinkOutcome.NOT_YET
    # The zone as the patient's messages name it ("CET"), not a database's name for it.
    assert early.headline == "Your consultation opens at 10:20 CET on Tue 8 Dec"
    assert "It starts at 10:30 CET." in early.detail
    in_new_york = decide_link(at_link(timezone="America/New_York"), START - timedelta(hours=3))
    assert "opens at 04:20 EST on Tue 8 Dec" in in_new_york.headline


def test_a_german_patient_reads_the_page_in_german_and_staff_in_english() -> None:
    """The patient's messages came in German, so the page their link opens speaks German too (its `lang`
    says so); a language the page is not written in falls back to English."""
    german = replace(at_link(), locale="de_DE")
    early = decide_link(german, WINDOW.opens_at - timedelta(seconds=1))
    assert early.language == "de"
    assert early.headline == ("Der Raum für Ihren Videotermin öffnet um 10:20 Uhr MEZ am Di., 8. Dez.")
    assert "Er beginnt um 10:30 Uhr MEZ." in early.detail
    assert decide_link(
        replace(german, attendance=Attendance(ConsultationStatus.CANCELLED)), START
    ).headline == ("Dieser Videotermin wurde abgesagt")
    assert decide_link(replace(at_link(), locale="fr_FR"), START).language == "en"
    # The page says whose consultation it is; an unknown link speaks the browser's language.
    assert decide_link(replace(german, with_whom="Dr. Lee"), START).about == "Ihr Videotermin mit Dr. Lee"
    assert decide_link(replace(at_link(), with_whom="Dr. Lee"), START).about == (
        "Your video consultation with Dr. Lee"
    )
    assert unknown_link("de-AT").headline == "Diesen Link kennen wir nicht"
    assert unknown_link("").headline == unknown_link("fr").headline == "This link is not one we know"


def test_inside_the_window_the_link_enters_from_its_opening_to_just_before_its_close() -> None:
    assert decide_link(at_link(), WINDOW.opens_at).enters
    assert decide_link(
        at_link(ConsultationStatus.IN_PROGRESS), WINDOW.closes_at - timedelta(seconds=1)
    ).enters
    assert decide_link(at_link(who=Participant.CLINICIAN), START).enters


def test_after_the_window_the_patient_is_asked_to_reply_to_rebook() -> None:
    late = decide_link(at_link(), WINDOW.closes_at)
    assert late.outcome is LinkOutcome.ENDED
    assert late.headline == "This consultation has ended"
    assert "rebook" in late.detail
    done_early = decide_link(at_link(ConsultationStatus.COMPLETED), START + timedelta(minutes=5))
    assert done_early.outcome is LinkOutcome.ENDED


def test_a_cancelled_consultation_never_opens() -> None:
    for moment in (WINDOW.opens_at - timedelta(days=1), START, WINDOW.closes_at + timedelta(days=1)):
        decided = decide_link(at_link(ConsultationStatus.CANCELLED), moment)
        assert decided.outcome is LinkOutcome.CANCELLED and not decided.enters


def test_an_unknown_link_and_things_that_cannot_be_tokens() -> None:
    assert decide_link(None, START).outcome is LinkOutcome.UNKNOWN
    assert looks_like_token("Zx9_-" * 8)
    for bad in ("", "a" * 65, "abc/def", "abc def", "ünï", "a.b", "%00"):
        assert not looks_like_token(bad), bad


def test_a_no_show_patient_inside_the_window_is_let_in() -> None:
    assert decide_link(at_link(ConsultationStatus.NO_SHOW), START + timedelta(minutes=15)).enters


T1 = START - timedelta(minutes=3)
T2 = START + timedelta(minutes=1)


def test_the_patient_alone_is_waiting_then_both_in_progress_started_when_both_came() -> None:
    waiting = attendance_after_join(Attendance(ConsultationStatus.CONFIRMED), Participant.PATIENT, T1)
    assert (waiting.status, waiting.patient_joined_at, waiting.started_at) == (
        ConsultationStatus.WAITING,
        T1,
        None,
    )
    both = attendance_after_join(waiting, Participant.CLINICIAN, T2)
    assert (both.status, both.clinician_joined_at, both.started_at) == (
        ConsultationStatus.IN_PROGRESS,
        T2,
        T2,
    )
    again = attendance_after_join(both, Participant.PATIENT, T2 + timedelta(minutes=5))
    assert again == both  # a rejoin keeps the first join and the start


def test_the_clinician_alone_keeps_the_booking_status() -> None:
    alone = attendance_after_join(Attendance(ConsultationStatus.SCHEDULED), Participant.CLINICIAN, T1)
    assert (alone.status, alone.clinician_joined_at) == (ConsultationStatus.SCHEDULED, T1)
    then = attendance_after_join(alone, Participant.PATIENT, T2)
    assert (then.status, then.started_at) == (ConsultationStatus.IN_PROGRESS, T2)


def test_settled_consultations_do_not_change() -> None:
    for status in (ConsultationStatus.CANCELLED, ConsultationStatus.COMPLETED):
        before = Attendance(status)
        assert attendance_after_join(before, Participant.PATIENT, T1) == before


def test_a_patient_joining_takes_back_a_no_show_but_the_clinician_does_not() -> None:
    marked = Attendance(ConsultationStatus.NO_SHOW, no_show_at=T1, no_show_by="system")
    clinician = attendance_after_join(marked, Participant.CLINICIAN, T2)
    assert (clinician.status, clinician.no_show_at) == (ConsultationStatus.NO_SHOW, T1)
    patient = attendance_after_join(clinician, Participant.PATIENT, T2 + timedelta(minutes=1))
    assert patient.status is ConsultationStatus.IN_PROGRESS
    assert (patient.no_show_at, patient.no_show_by) == (None, None)


def waiting_patient(
    status: ConsultationStatus = ConsultationStatus.WAITING,
    token: str | None = "tok",  # noqa: S107
) -> WaitingPatient:
    return WaitingPatient(
        join_id=1,
        consultation_id=7,
        joined_at=T1,
        status=status,
        window=WINDOW,
        patient_name="Anna Meyer",
        clinician_name="Clara",
        clinician_timezone="Europe/Berlin",
        clinician_token=token,
        service_name="Skin check",
    )


def test_the_clinician_is_told_while_the_patient_waits_alone_in_the_window() -> None:
    assert waiting_words(waiting_patient()) == (
        "Anna Meyer is in the waiting room for your 10:30 (Europe/Berlin time) consultation (Skin check)."
    )
    assert worth_telling(waiting_patient(), T1, set())
    assert not worth_telling(waiting_patient(), T1, {7})  # told a moment ago
    assert not worth_telling(waiting_patient(ConsultationStatus.IN_PROGRESS), T1, set())
    assert not worth_telling(waiting_patient(), WINDOW.closes_at, set())
    assert not worth_telling(waiting_patient(token=None), T1, set())
