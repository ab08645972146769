"""Automated notifications: business events turned into messages by the rules staff set up."""
