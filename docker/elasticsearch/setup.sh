#!/usr/bin/env bash
# One-shot set-up of a secured Elasticsearch deployment, following Elastic's documented
# docker-compose layout: a CA and one certificate per node (kept across restarts), then the
# kibana_system password and newsradar's own least-privilege user. Safe to run again: existing
# certificates are kept, passwords and the role are (re)applied.
#
# Runs as root inside the Elasticsearch image (it carries elasticsearch-certutil, curl and unzip).
# Env: ES_NODES (space-separated node names), ELASTIC_PASSWORD, KIBANA_PASSWORD,
# NEWSRADAR_ES_PASSWORD, NEWSRADAR_WEB_ES_PASSWORD, KIBANA_ENCRYPTION_KEY, NEWSRADAR_INDEX_PREFIX,
# ES_CERT_EXTRA_DNS (optional extra host names).
set -euo pipefail

fail() { echo "setup: $*" >&2; exit 1; }

: "${ES_NODES:?ES_NODES must name the nodes, e.g. \"es01 es02 es03\"}"
for name in ELASTIC_PASSWORD KIBANA_PASSWORD NEWSRADAR_ES_PASSWORD NEWSRADAR_WEB_ES_PASSWORD; do
  value=${!name:-}
  [ -n "$value" ] || fail "set $name in docker/.env (see docker/.env.example)"
  [[ "$value" != CHANGE-ME* ]] || fail "replace the CHANGE-ME placeholder of $name in docker/.env"
  # The passwords travel inside JSON bodies here and inside URLs (NEWSRADAR_ES_URL): keep them to
  # characters that need no escaping in either.
  [[ "$value" =~ ^[A-Za-z0-9._~-]{12,}$ ]] \
    || fail "$name must be at least 12 characters of A-Z a-z 0-9 . _ ~ - (it is used inside a URL)"
done
key=${KIBANA_ENCRYPTION_KEY:-}
[ -n "$key" ] || fail "set KIBANA_ENCRYPTION_KEY in docker/.env (see docker/.env.example)"
[[ "$key" != *CHANGE-ME* ]] || fail "replace the CHANGE-ME placeholder of KIBANA_ENCRYPTION_KEY in docker/.env"
[ "${#key}" -ge 32 ] || fail "KIBANA_ENCRYPTION_KEY must be at least 32 characters"
prefix=${NEWSRADAR_INDEX_PREFIX:-newsradar}
[[ "$prefix" =~ ^[a-z0-9][a-z0-9._-]*$ ]] || fail "NEWSRADAR_INDEX_PREFIX must be lower case: $prefix"

cd /usr/share/elasticsearch
certs=config/certs
if [ ! -f "$certs/ca.zip" ]; then
  echo "Creating CA"
  bin/elasticsearch-certutil ca --silent --pem -out "$certs/ca.zip"
  unzip -q -o "$certs/ca.zip" -d "$certs"
fi
if [ ! -f "$certs/certs.zip" ]; then
  echo "Creating node certificates for: $ES_NODES"
  {
    echo "instances:"
    for node in $ES_NODES; do
      printf '  - name: %s\n    dns:\n      - %s\n      - localhost\n' "$node" "$node"
      for extra in ${ES_CERT_EXTRA_DNS:-}; do
        printf '      - %s\n' "$extra"
      done
      printf '    ip:\n      - 127.0.0.1\n'
    done
  } > "$certs/instances.yml"
  bin/elasticsearch-certutil cert --silent --pem -out "$certs/certs.zip" --in "$certs/instances.yml" \
    --ca-cert "$certs/ca/ca.crt" --ca-key "$certs/ca/ca.key"
  unzip -q -o "$certs/certs.zip" -d "$certs"
fi
echo "Setting file permissions"
chown -R root:root "$certs"
find "$certs" -type d -exec chmod 750 {} \;
find "$certs" -type f -exec chmod 640 {} \;
# Clients (Kibana, the Airflow workers, the web UI) get the CA certificate only, never its key.
install -m 0644 "$certs/ca/ca.crt" /ca/ca.crt
touch "$certs/.ready"

first=${ES_NODES%% *}
url="https://$first:9200"
es() {  # METHOD PATH BODY: as the elastic superuser, over TLS verified against our CA
  curl -s -X "$1" --cacert "$certs/ca/ca.crt" -u "elastic:$ELASTIC_PASSWORD" \
    -H "Content-Type: application/json" "$url$2" -d "$3"
}

echo "Waiting for Elasticsearch at $url"
until curl -s --cacert "$certs/ca/ca.crt" "$url" | grep -q "missing authentication credentials"; do sleep 10; done

echo "Setting kibana_system password"
until es POST /_security/user/kibana_system/_password "{\"password\":\"$KIBANA_PASSWORD\"}" | grep -q "^{}"; do
  sleep 10
done

echo "Creating role newsradar_app (indices $prefix-*) and user newsradar"
role="{\"cluster\":[\"monitor\",\"manage_index_templates\"],
       \"indices\":[{\"names\":[\"$prefix-*\"],\"privileges\":[\"all\"]}]}"
until es PUT /_security/role/newsradar_app "$role" | grep -q '"created"'; do sleep 5; done
user="{\"password\":\"$NEWSRADAR_ES_PASSWORD\",\"roles\":[\"newsradar_app\"],
       \"full_name\":\"newsradar pipeline and web UI\"}"
until es PUT /_security/user/newsradar "$user" | grep -q '"created"'; do sleep 5; done

# The web UI reads; the only thing it writes is a saved search (an alert rule) when an admin token is
# set, so its role can read every newsradar index and write the rules index alone.
echo "Creating role newsradar_web (read $prefix-*, write $prefix-rules) and user newsradar_web"
role="{\"cluster\":[\"monitor\"],
       \"indices\":[{\"names\":[\"$prefix-*\"],\"privileges\":[\"read\",\"view_index_metadata\"]},
                    {\"names\":[\"$prefix-rules\"],\"privileges\":[\"create_index\",\"write\"]}]}"
until es PUT /_security/role/newsradar_web "$role" | grep -q '"created"'; do sleep 5; done
user="{\"password\":\"$NEWSRADAR_WEB_ES_PASSWORD\",\"roles\":[\"newsradar_web\"],
       \"full_name\":\"newsradar web UI (read-only but for saved searches)\"}"
until es PUT /_security/user/newsradar_web "$user" | grep -q '"created"'; do sleep 5; done
echo "All done"
