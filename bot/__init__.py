"""The staff chat edge: the command table, parsing, and the Slack, Telegram and console front ends."""
