#!/bin/sh
# A private CA and the NATS nodes' certificate:
#   sh deploy/nats/make-certs.sh [folder]    (default deploy/nats)
# writes folder/tls/{ca.crt,tls.crt,tls.key} (mounted into the NATS nodes; ca.crt also into
# every service) and folder/ca-key/ca.key (the CA's key: keep it offline, never mounted).
# The same certificate serves client TLS (services connect to nats-N.nats) and the routes
# (mutual TLS: each node shows it to the others). No wildcard "*.nats": OpenSSL, hence
# Python's ssl, refuses a wildcard over a single label.
set -eu
base="${1:-$(dirname "$0")}"
mkdir -p "$base/tls" "$base/ca-key"
tls="$base/tls"
key="$base/ca-key/ca.key"
umask 077
openssl ecparam -name prime256v1 -genkey -noout -out "$key"
openssl req -x509 -new -key "$key" -sha256 -days 1825 -subj "/CN=microtask NATS CA" \
  -out "$tls/ca.crt"
openssl ecparam -name prime256v1 -genkey -noout -out "$tls/tls.key"
openssl req -new -key "$tls/tls.key" -subj "/CN=nats" -out "$tls/tls.csr"
cat > "$tls/tls.ext" <<'EXT'
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:nats, DNS:nats-0.nats, DNS:nats-1.nats, DNS:nats-2.nats, DNS:*.nats.microtask.svc.cluster.local, DNS:localhost
EXT
openssl x509 -req -in "$tls/tls.csr" -CA "$tls/ca.crt" -CAkey "$key" -CAcreateserial \
  -CAserial "$base/ca-key/ca.srl" -days 825 -sha256 -extfile "$tls/tls.ext" -out "$tls/tls.crt"
rm -f "$tls/tls.csr" "$tls/tls.ext"
chmod 644 "$tls/ca.crt" "$tls/tls.crt"
echo "written: $tls/ca.crt $tls/tls.crt $tls/tls.key; CA key: $key (keep it offline)"
