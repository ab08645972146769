"""Signing staff in: one-time login links and the sandbox's demo sign-in."""
