"""Development tools shared by the tests and ``scripts/demo`` (not part of either package)."""
