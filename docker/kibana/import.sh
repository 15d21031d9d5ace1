#!/usr/bin/env bash
# Import newsradar's Kibana objects: the data view on the articles alias, the Lens charts, the
# "newsradar overview" dashboard and the "latest articles" saved search. Safe to repeat
# (overwrite=true replaces the objects by id).
#
# Usage: docker/kibana/import.sh [KIBANA_URL]        (default http://localhost:5601)
# Env:   ELASTIC_PASSWORD (else read from docker/.env), NEWSRADAR_INDEX_PREFIX (default newsradar)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
url=${1:-${KIBANA_URL:-http://localhost:5601}}
if [ -z "${ELASTIC_PASSWORD:-}" ] && [ -f "$here/../.env" ]; then
  ELASTIC_PASSWORD=$(sed -n 's/^ELASTIC_PASSWORD=//p' "$here/../.env")
fi
if [ -z "${ELASTIC_PASSWORD:-}" ]; then
  echo "import.sh: set ELASTIC_PASSWORD (or run it next to a filled-in docker/.env)" >&2
  exit 1
fi
prefix=${NEWSRADAR_INDEX_PREFIX:-newsradar}

objects=$(mktemp --suffix=.ndjson)
trap 'rm -f "$objects"' EXIT
# The objects name the default prefix; a deployment with another prefix gets its own names.
sed "s/newsradar-articles/${prefix}-articles/g" "$here/saved_objects.ndjson" > "$objects"

# The password goes to curl on stdin, never on its command line (visible to every local user).
response=$(printf 'user = "elastic:%s"\n' "$ELASTIC_PASSWORD" | curl -sS -K - -X POST \
  "$url/api/saved_objects/_import?overwrite=true" -H "kbn-xsrf: true" --form "file=@$objects")
if ! grep -q '"success":true' <<<"$response"; then
  echo "import.sh: Kibana refused the import: $response" >&2
  exit 1
fi
echo "imported: $response"
