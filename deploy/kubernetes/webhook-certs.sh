#!/bin/sh
# Certificates for the lxcfs-ts admission webhook (webhook.yaml), made with openssl:
#
#   deploy/kubernetes/webhook-certs.sh [DIR]          # DIR default ./lxcfs-ts-webhook-certs
#   APPLY=1 deploy/kubernetes/webhook-certs.sh [DIR]  # also runs the kubectl commands it prints
#
# Makes a private CA (ca.key, ca.crt) and the server's key and certificate (tls.key, tls.crt) for the
# Service's DNS names, then prints the kubectl commands that store them in the Secret
# lxcfs-ts-webhook-tls and put ca.crt into the MutatingWebhookConfiguration's caBundle (the API server
# verifies the webhook with it). An existing CA in DIR is reused, so a renewal (run again, then
# `kubectl -n lxcfs-ts rollout restart deployment lxcfs-ts-webhook`) keeps caBundle valid.
# Environment: NAMESPACE (lxcfs-ts), SERVICE (lxcfs-ts-webhook), DAYS (server certificate, 365),
# CA_DAYS (3650).

set -eu

DIR=${1:-./lxcfs-ts-webhook-certs}
NAMESPACE=${NAMESPACE:-lxcfs-ts}
SERVICE=${SERVICE:-lxcfs-ts-webhook}
DAYS=${DAYS:-365}
CA_DAYS=${CA_DAYS:-3650}
HOST=$SERVICE.$NAMESPACE.svc

command -v openssl >/dev/null || { echo "webhook-certs.sh: openssl not found" >&2; exit 1; }
mkdir -p "$DIR"
umask 077

if [ ! -s "$DIR/ca.key" ] || [ ! -s "$DIR/ca.crt" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -days "$CA_DAYS" \
    -subj "/CN=$SERVICE CA" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$DIR/ca.key" -out "$DIR/ca.crt" 2>/dev/null
fi
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$HOST" \
  -keyout "$DIR/tls.key" -out "$DIR/tls.csr" 2>/dev/null
# The API server checks subjectAltName only (not the CN).
printf 'subjectAltName=DNS:%s,DNS:%s.%s,DNS:%s.cluster.local\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
  "$HOST" "$SERVICE" "$NAMESPACE" "$HOST" >"$DIR/tls.ext"
openssl x509 -req -sha256 -days "$DAYS" -in "$DIR/tls.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial \
  -extfile "$DIR/tls.ext" -out "$DIR/tls.crt" 2>/dev/null
rm -f "$DIR/tls.csr" "$DIR/tls.ext" "$DIR/ca.srl"
openssl verify -CAfile "$DIR/ca.crt" "$DIR/tls.crt" >/dev/null

CA_BUNDLE=$(base64 <"$DIR/ca.crt" | tr -d '\n')
SECRET="kubectl -n $NAMESPACE create secret tls $SERVICE-tls --cert=$DIR/tls.crt --key=$DIR/tls.key --dry-run=client -o yaml | kubectl apply -f -"
PATCH="kubectl patch mutatingwebhookconfiguration lxcfs-ts --type=json -p '[{\"op\":\"replace\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"$CA_BUNDLE\"},{\"op\":\"replace\",\"path\":\"/webhooks/1/clientConfig/caBundle\",\"value\":\"$CA_BUNDLE\"}]'"

echo "made $DIR/tls.crt for $HOST (signed by $DIR/ca.crt; keep ca.key for renewals)" >&2
if [ "${APPLY:-0}" = 1 ]; then
  sh -c "$SECRET"
  sh -c "$PATCH"
else
  echo "$SECRET"
  echo "$PATCH"
fi
