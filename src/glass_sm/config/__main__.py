"""``python -m glass_sm.config {check|run-name|results} PARAMS.yaml``."""

import sys

from glass_sm.config.provenance import _main

if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
