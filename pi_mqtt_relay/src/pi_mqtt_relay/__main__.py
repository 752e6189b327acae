"""Command line entry point of ``pi-mqtt-relay``."""

import sys


def main() -> int:
    """Run the agent (not built yet)."""
    print("pi-mqtt-relay: not built yet", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
