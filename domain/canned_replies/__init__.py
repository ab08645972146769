"""Canned replies: saved answers agents insert by shortcut, with `{variables}` filled from the conversation."""
