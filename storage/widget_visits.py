"""The unit of work the widget's use-cases run in: the inbound one, plus visitors, on one session."""

from __future__ import annotations

from domain.vocabulary import Channel
from storage.conversations import SqlConversations
from storage.inbox import ConversationUnitOfWork
from storage.units import UnitsOfWork
from storage.widget import SqlVisitors, SqlWidgetKeys, visitor_id_of


class WidgetConversations(SqlConversations):
    """The conversation store, knowing who a widget visitor is: the customer their visitor row names."""

    async def find_customer(self, channel: Channel, address: str) -> int | None:
        if channel is not Channel.CHAT:
            return await super().find_customer(channel, address)
        visitor_id = visitor_id_of(address)
        if visitor_id is None:
            return None
        return await SqlVisitors(self.session).visitor_customer(visitor_id)


class SqlWidgetUnitOfWork(ConversationUnitOfWork):
    """Satisfies domain.widget.ports.WidgetUnitOfWork."""

    @property
    def conversations(self) -> WidgetConversations:
        return WidgetConversations(self.session, business_tz=self._inner.business_tz)

    @property
    def visitors(self) -> SqlVisitors:
        return SqlVisitors(self.session)

    @property
    def keys(self) -> SqlWidgetKeys:
        return SqlWidgetKeys(self.session)


def widget_unit(units: UnitsOfWork) -> SqlWidgetUnitOfWork:
    """A fresh widget unit of work on the container's database."""
    return SqlWidgetUnitOfWork(units.general())
