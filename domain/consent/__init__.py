"""Whether a message may go to a customer now, later or not at all; and inbound opt-out keywords."""
