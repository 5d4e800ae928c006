#!/bin/sh
# Makes the certificates of spec/tls_spec.lua in DIR with the openssl CLI, at test
# time, so no private key is ever committed. EC P-256 keys (fast). Files:
#   ca.pem ca.key           the test CA ("moonwire test CA")
#   server.pem server.key   localhost, 127.0.0.1 and ::1 (SAN), from the CA
#   expired.pem .key        the same names, from the CA, valid only in January 2020
#   other.pem .key          other.test, from the CA
#   wild.pem .key           *.wild.test, from the CA
#   self.pem .key           self-signed, localhost and 127.0.0.1
#   rogue-ca.pem .key       a CA nobody trusts, and unknown.pem .key from it (localhost)
#   client.pem .key         a client certificate ("moonwire client"), from the CA
#   client2.pem .key        another ("moonwire client 2"), from the rogue CA: a renewal
# Identities of the name check (each from the CA; the CN is "moonwire <name>" unless said):
#   ip6.pem .key            SAN IP:::1 only
#   dnsip.pem .key          SAN DNS:127.0.0.1 only (an IP written as a DNS name)
#   wildip.pem .key         SAN DNS:*.0.0.1 only
#   cnip.pem .key           CN=127.0.0.1, no SAN
#   cnhost.pem .key         CN=localhost, no SAN (the legacy CN fallback)
#   ipcn.pem .key           CN=localhost, SAN IP:127.0.0.2 (a SAN is there: no CN fallback)
set -eu
DIR=$1
mkdir -p "$DIR"
cd "$DIR"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }

ca() { # name subject
    key "$1"
    openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 30 -subj "/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}

cat > ext.cnf <<'EOF'
[server]
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1,IP:::1
[other]
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth
subjectAltName = DNS:other.test
[wild]
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth
subjectAltName = DNS:*.wild.test
[client]
basicConstraints = CA:FALSE
extendedKeyUsage = clientAuth
EOF

leaf() { # name subject ca-name ext-section
    key "$1"
    openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$2"
    openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days 30 \
        -out "$1.pem" -extfile ext.cnf -extensions "$4" 2>/dev/null
}

ca ca "moonwire test CA"
ca rogue-ca "moonwire rogue CA"
leaf server localhost ca server
leaf other other.test ca other
leaf wild wild.test ca wild
leaf unknown localhost rogue-ca server
leaf client "moonwire client" ca client
leaf client2 "moonwire client 2" rogue-ca client

# expired: `openssl x509` cannot set past dates before OpenSSL 3.4; `openssl ca` can
key expired
openssl req -new -key expired.key -out expired.csr -subj "/CN=localhost"
mkdir -p cadb
: > cadb/index.txt
echo 1000 > cadb/serial
cat > ca.cnf <<'EOF'
[ca]
default_ca = test
[test]
database = cadb/index.txt
new_certs_dir = cadb
serial = cadb/serial
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
EOF
cat ext.cnf >> ca.cnf
openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr -out expired.pem \
    -startdate 20200101000000Z -enddate 20200201000000Z -extensions server -notext 2>/dev/null

key self
openssl req -x509 -new -key self.key -out self.pem -days 30 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1"

cat >> ext.cnf <<'EOF'
[ip6]
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth
subjectAltName = IP:::1
[dnsip]
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth
subjectAltName = DNS:127.0.0.1
[wildip]
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth
subjectAltName = DNS:*.0.0.1
[nosan]
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth
[ipcn]
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.2
EOF
leaf ip6 "moonwire ip6" ca ip6
leaf dnsip "moonwire dnsip" ca dnsip
leaf wildip "moonwire wildip" ca wildip
leaf cnip 127.0.0.1 ca nosan
leaf cnhost localhost ca nosan
leaf ipcn localhost ca ipcn
echo OK
