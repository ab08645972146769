"""WhatsApp Cloud API (Meta): the driver, the signed webhook and its subscription handshake."""
