"""Snapshot files: full CSV extracts HR drops in a folder, each applied once (``service``)."""
