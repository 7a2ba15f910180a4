#!/usr/bin/env bash
# Fresh-machine set-up, idempotent: Debian's R, Slurm and Chromium packages when missing, then the venv
# .venv with every Python package pinned. A second run checks and returns in seconds.
#
#   tools/setup.sh            # what `make demo` and `make test` call
#   MTNET_SKIP_APT=1 ...      # skip the system packages (you installed them yourself)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
START=$(date +%s)

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

# --------------------------------------------------------------- Debian packages
APT_PACKAGES=(
  # R and the packages the statistics engine calls through rpy2 (Debian's, not CRAN's)
  r-base-core r-cran-proc r-cran-hmisc r-cran-rms r-cran-survival
  # a single-node Slurm for the cluster test
  slurmctld slurmd slurm-client munge
  # headless Chromium and its driver for the applet's and the report's browser tests
  # (selenium drives them; no browser is downloaded at run time)
  chromium chromium-driver
)

missing_apt() {
  local pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}

if [[ "${MTNET_SKIP_APT:-0}" != 1 ]]; then
  if ! command -v dpkg-query >/dev/null; then
    say "not a Debian system: install R 4.2 (pROC, Hmisc, rms, survival), Slurm and Chromium with its chromedriver yourself, then MTNET_SKIP_APT=1"
  else
    mapfile -t MISSING < <(missing_apt)
    if ((${#MISSING[@]})); then
      SUDO=""
      if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || die "need root or sudo to apt-get install: ${MISSING[*]}"
        SUDO="sudo"
      fi
      say "installing Debian packages: ${MISSING[*]}"
      $SUDO apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "${MISSING[@]}" >/dev/null
      # Debian's packages try to start services through systemd; the tests start their own.
    fi
  fi
fi

# --------------------------------------------------------------- Python venv
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY="$cand"; break
    fi
  done
fi
[[ -n "$PY" ]] || die "Python 3.11 not found (set PYTHON=/path/to/python3.11)"

STAMP_KEY=$(cat requirements-torch.txt requirements.txt requirements-build.txt pyproject.toml | sha256sum | cut -c1-16)
STAMP="$VENV/.mtnet-installed-$STAMP_KEY"

if [[ -f "$STAMP" ]]; then
  say "venv up to date ($VENV)"
else
  if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating $VENV"
    "$PY" -m venv "$VENV"
  fi
  PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
  say "installing torch (CPU) first"
  "${PIP[@]}" install -r requirements-torch.txt
  say "installing pinned packages"
  "${PIP[@]}" install numpy=="$(sed -n 's/^numpy==//p' requirements.txt)" \
    versioneer=="$(sed -n 's/^versioneer==//p' requirements.txt)"
  "${PIP[@]}" install -r requirements.txt
  "${PIP[@]}" install --no-build-isolation --no-deps -r requirements-build.txt
  "${PIP[@]}" install --no-deps -e .
  "$VENV/bin/python" -m pip check >/dev/null || die "pip check found broken requirements: run $VENV/bin/python -m pip check"
  rm -f "$VENV"/.mtnet-installed-*
  touch "$STAMP"
fi

say "done in $(( $(date +%s) - START )) s"
