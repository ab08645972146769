"""The website chat widget: keys and their origins, visitors, and what they write and receive."""
