#!/usr/bin/env bash
# Make a TEST certificate authority and certificates for the broker, HQ and each store.
#   deploy/make-test-ca.sh OUT_DIR [STORE_ID ...]     (default stores: madrid-centro sevilla-nervion)
# Writes OUT_DIR/ca.{crt,key}, broker.{crt,key} (CN localhost, SAN localhost and 127.0.0.1),
# hq.{crt,key} (CN hq) and store-<id>.{crt,key} (CN <id>). EC P-256 keys, PEM.
# For production, keep the CA key offline and issue certs the same way (see deploy/TLS.md).
set -euo pipefail

out=${1:?usage: make-test-ca.sh OUT_DIR [STORE_ID ...]}
shift
stores=("$@")
[ ${#stores[@]} -gt 0 ] || stores=(madrid-centro sevilla-nervion)
days=${CERT_DAYS:-825}
mkdir -p "$out"
cd "$out"

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# The CA.
newkey ca.key
openssl req -x509 -new -key ca.key -sha256 -days "$days" -subj "/O=storenode test/CN=storenode test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.crt

# sign NAME CN EXTENSIONS...: a key and a certificate signed by the CA.
sign() {
  local name=$1 cn=$2 ext=$3
  newkey "$name.key"
  openssl req -new -key "$name.key" -subj "/O=storenode test/CN=$cn" -out "$name.csr"
  printf '%b' "$ext" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 \
    -days "$days" -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

common="basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyAgreement\n"
sign broker localhost "${common}extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
sign hq hq "${common}extendedKeyUsage=clientAuth\n"
for id in "${stores[@]}"; do
  if [ "$id" = hq ]; then
    echo "refusing to issue a store certificate with CN hq" >&2
    exit 1
  fi
  sign "store-$id" "$id" "${common}extendedKeyUsage=clientAuth\n"
done
chmod 600 ./*.key
rm -f ca.srl
echo "test CA and certificates in $out: ca.crt broker.crt hq.crt $(printf 'store-%s.crt ' "${stores[@]}")"
