"""Slack: the staff chat's Web API client (the staff front end itself lives in `bot/slack/`)."""
