"""The messaging edge: command layer, Slack and Telegram front ends, console, provider drivers."""
