"""One folder per outside service: its outbound driver, its webhook reader and checks, its client.

`providers.registry` is the one table the worker (drivers, pacing) and the webhook inbox (readers) loop
over; adding a provider means a folder here, a row there, and the sandbox's stand-in under `api/sandbox/`.
"""
