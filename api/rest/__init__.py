"""The JSON API under /api: messages, templates, customer preferences, campaigns, business events, notification rules,
video consultations and services."""

from api.rest.campaigns import CampaignsController
from api.rest.customers import CustomersController
from api.rest.events import EventsController
from api.rest.messages import MessagesController
from api.rest.notification_rules import NotificationRulesController
from api.rest.services import ServicesController
from api.rest.templates import TemplatesController
from api.rest.video import VideoController

API_CONTROLLERS = [
    MessagesController,
    TemplatesController,
    CustomersController,
    CampaignsController,
    EventsController,
    NotificationRulesController,
    VideoController,
    ServicesController,
]

__all__ = ["API_CONTROLLERS"]
