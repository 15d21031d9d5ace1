#!/usr/bin/env bash
# Idempotent set-up of a fresh machine: the few system packages, then .venv from the lock.
# A second run finds everything in place and returns in about a second.
#
#   scripts/setup.sh        what the main job needs (`make run`): the default pipeline, no torch
#   scripts/setup.sh test   everything the test suite exercises (`make test`): every extra
#                           (Celery stack, sentence-transformers, Argos, training), browser, linters
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${1:-run}
case "$profile" in
  run) extras="" ;;
  test) extras="[dev]" ;;
  *) printf '[setup] unknown profile %s (run | test)\n' "$profile" >&2; exit 2 ;;
esac

log() { printf '[setup] %s\n' "$*" >&2; }

missing=()
command -v unzip >/dev/null 2>&1 || missing+=(unzip)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
if [ "$profile" = test ]; then
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)  # browser tests (driven by Playwright)
  [ -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || missing+=(fonts-wqy-zenhei)  # CJK in screenshots
  compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || missing+=(postgresql)  # Celery stack: metadata DB
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)  # Celery stack: broker
fi
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    log "missing system packages: ${missing[*]}; install them (apt-get install ${missing[*]}) and rerun"
    exit 1
  fi
  log "installing system packages: ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python=${NEWSRADAR_PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      python=$candidate
      break
    fi
  done
fi
if [ -z "$python" ]; then
  log "Python 3.11 is required (set NEWSRADAR_PYTHON to its path)"
  exit 1
fi

# A stamp per profile: the test profile includes the run profile, not the other way round.
stamp=.venv/.installed-$profile
want=$( (cat pyproject.toml requirements.lock; echo "$profile") | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $python"
  "$python" -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing locked dependencies ($profile profile) into .venv"
  # pip 23 silently drops lxml[html_clean]; upgrade pip first.
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade "pip==26.3"
  PYTHONWARNINGS=ignore .venv/bin/python -m pip install -q --disable-pip-version-check -c requirements.lock -e ".$extras"
  echo "$want" > "$stamp"
  if [ "$profile" = test ]; then
    echo "$( (cat pyproject.toml requirements.lock; echo run) | sha256sum | cut -d' ' -f1)" > .venv/.installed-run
  fi
else
  log ".venv is up to date"
fi

# Bytecode for the project's own modules. Where PYTHONDONTWRITEBYTECODE is set (common in containers
# and CI) Python never caches them, so every process compiles them again: each crawl's Scrapy
# subprocess and each Airflow task. Up-to-date files are skipped, so this costs a fraction of a second.
.venv/bin/python -m compileall -q newsradar crawlers enrich index alerts web commands stack dagkit dags bench
