"""Telling agents what happened to their replies, in the staff chat they answer from (a Slack thread, the
staff bot's Telegram chat). A pass claims the outcomes to tell, then tells them in order; how the chat
refuses one decides what happens to it and to those after it. Both chats go through `tell_in_order`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger(__name__)

Echo = TypeVar("Echo")


class PostRefused(Exception):
    """The chat refused a delivery echo for good (Slack: an archived or unknown channel, the app not in it,
    blocks it does not take; Telegram: the agent blocked the bot): posting it again would be refused again,
    so it is dropped and logged."""


class PostNotTaken(Exception):
    """The chat did not take this one echo, for a reason of its own it did not explain as final: the echo is
    tried again in the next pass and the others go on. Any other failure (rate limited, the chat's service
    down, the network, the app's token) holds back this echo and the rest of the pass for the next one."""


@dataclass
class Told:
    told: int = 0
    given_back: int = 0


async def tell_in_order(
    echoes: Sequence[Echo],
    tell: Callable[[Echo], Awaitable[bool]],
    give_back: Callable[[Sequence[Echo]], Awaitable[None]],
    *,
    chat: str,
    turn_of: Callable[[Echo], int],
    errors: list[str],
) -> Told:
    """Tell each claimed echo (`tell` returns False when there is nowhere to tell it, e.g. no thread). One
    refused for good is dropped; one not taken is given back; on any other failure it and those after it
    are given back for the next pass instead of each waiting out the same failure. What went wrong is
    logged and added to `errors`; a give-back that fails (the database busy) is logged, and those echoes
    are not told."""
    done = Told()

    async def back(these: Sequence[Echo]) -> None:
        try:
            await give_back(these)
        except Exception:
            log.warning(
                "could not give back %d delivery echoes in %s for the next pass",
                len(these),
                chat,
                exc_info=True,
            )
            return
        done.given_back += len(these)

    for index, echo in enumerate(echoes):
        turn = turn_of(echo)
        try:
            if await tell(echo):
                done.told += 1
        except PostRefused as error:
            log.warning("%s refused the delivery echo of turn %s for good: %s", chat, turn, error)
            errors.append(f"echo {turn}: {error}")
        except PostNotTaken as error:
            log.warning("%s did not take the delivery echo of turn %s, tried again: %s", chat, turn, error)
            errors.append(f"echo {turn}: {error}")
            await back([echo])
        except Exception as error:
            log.warning(
                "echoing delivery of turn %s in %s failed, tried again next pass: %s", turn, chat, error
            )
            errors.append(f"echo {turn}: {error}")
            await back(echoes[index:])
            break
    return done
