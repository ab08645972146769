"""The staff command layer: parse text into typed commands, check the role, run the use-case, reply."""
