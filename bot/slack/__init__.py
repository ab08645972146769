"""The staff Slack app: Bolt listeners that run Switchboard commands and render replies as Block Kit."""
