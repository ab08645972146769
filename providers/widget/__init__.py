"""The website chat widget as a provider: replies are handed to the visitor's widget, not to an outside service."""
