"""Local fakes of the Slack Web API and Telegram Bot API for end-to-end tests of the staff bots."""
