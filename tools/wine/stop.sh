#!/usr/bin/env bash
# Stop the wineserver (and any Wine process) of tools/wine's own WINEPREFIX.
# Harmless when nothing runs. Call it at the end of a test run.
set -euo pipefail
exec "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/winpython" --stop
