"""Video rooms: a self-hosted Jitsi with a JWT per join, or a clinic's own meeting link."""
