#!/bin/sh
# Trust the deployment's private CA (Elasticsearch TLS) in every Python client of the image:
# certifi's bundle, which the Elasticsearch client, requests and httpx read, is a link to
# $CA_BUNDLE, rebuilt here from the public roots plus the files named in EXTRA_CA_CERTS.
set -eu
bundle=${CA_BUNDLE:-/opt/newsradar-ca/bundle.pem}
public=${CA_PUBLIC:-/opt/newsradar-ca/public.pem}
if [ -n "${EXTRA_CA_CERTS:-}" ]; then
  tmp="$bundle.$$"
  cat "$public" > "$tmp"
  for cert in $EXTRA_CA_CERTS; do
    if [ -r "$cert" ]; then
      cat "$cert" >> "$tmp"
    else
      echo "newsradar: EXTRA_CA_CERTS names $cert, which is missing or unreadable; TLS to servers it signs will fail" >&2
    fi
  done
  mv "$tmp" "$bundle"
fi
exec "$@"
