"""Entry-point wrapper: user mistakes become one line on stderr and exit code 2."""
import sys

from engine.errors import UserError


def run_cli(main):
    try:
        main(sys.argv[1:])
    except UserError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        sys.exit(130)
