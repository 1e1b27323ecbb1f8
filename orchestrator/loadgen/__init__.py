"""Load tools: each module builds its command for a profile and parses its output."""
