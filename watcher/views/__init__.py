"""Read-only views of what is stored: change queries and version diffs, Atom feeds, the trial page."""
