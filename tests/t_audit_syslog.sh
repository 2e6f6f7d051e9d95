#!/usr/bin/env bash
# `medveil audit export --syslog HOST:PORT --tls`: an unprivileged rsyslogd from Debian listens on
# loopback (imtcp with the ossl stream driver, a CA and server certificate made here with the
# openssl CLI) and writes what it receives to a file. rsyslog's own RFC 5424 parser and its
# RFC 5425 octet-counting framing must make of our stream exactly the messages sent: PRI 85/84
# (facility 10), version 1, APP-NAME medveil, MSGID IHE+RFC-3881, the host, and each DICOM audit
# message whole. A server certificate from another CA is refused with exit 3 and nothing sent.
# Skips (77) loudly when rsyslogd cannot start here.
set -u
SRC=${MV_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${MV_BUILD_DIR:-$SRC/build}
work=$(mktemp -d /tmp/mv_audit_syslog_XXXXXX)
rsyslog_pid=
cleanup() {
    if [ -n "$rsyslog_pid" ]; then kill "$rsyslog_pid" 2>/dev/null; wait "$rsyslog_pid" 2>/dev/null; fi
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
failed=0
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
skip() { echo "SKIP: $*"; exit 77; }

# The command: the test program (the export code with a stand-in audit hook), else `medveil audit`.
if [ -x "$BUILD/tests/test_audit_cli" ]; then
    CMD=("$BUILD/tests/test_audit_cli")
elif [ -n "${MEDVEIL:-}" ] && "$MEDVEIL" audit export --help >/dev/null 2>&1; then
    CMD=("$MEDVEIL" audit)
else
    skip "neither $BUILD/tests/test_audit_cli nor 'medveil audit export' is available"
fi

RSYSLOGD=$(command -v rsyslogd || echo /usr/sbin/rsyslogd)
[ -x "$RSYSLOGD" ] || skip "rsyslogd is not installed (Debian package rsyslog)"
MODDIR=
for d in /usr/lib/x86_64-linux-gnu/rsyslog /usr/lib/aarch64-linux-gnu/rsyslog /usr/lib/rsyslog; do
    if [ -f "$d/lmnsd_ossl.so" ]; then MODDIR=$d; break; fi
done
[ -n "$MODDIR" ] || skip "rsyslog's OpenSSL stream driver (lmnsd_ossl.so) is not installed (rsyslog-openssl)"
command -v openssl >/dev/null || skip "openssl CLI missing"

# ---- Certificates: a CA, a server certificate for localhost/127.0.0.1, and an unrelated CA.
cd "$work" || exit 1
mkcert() { # NAME CN: a CA key and self-signed certificate
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$2" \
        -keyout "$1.key" -out "$1.pem" 2>/dev/null
}
mkcert ca "medveil test CA" || skip "openssl cannot make a CA here"
mkcert other "some other CA"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf \
    -out server.pem 2>/dev/null || skip "openssl cannot sign the server certificate"
# A client certificate for mutual TLS.
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=medveil-client" \
    -keyout client.key -out client.csr 2>/dev/null
printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' > cext.cnf
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile cext.cnf \
    -out client.pem 2>/dev/null

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p spool
cat > rsyslog.conf <<EOF
global(workDirectory="$work/spool" maxMessageSize="256k"
       defaultNetstreamDriver="ossl"
       defaultNetstreamDriverCAFile="$work/ca.pem"
       defaultNetstreamDriverCertFile="$work/server.pem"
       defaultNetstreamDriverKeyFile="$work/server.key")
module(load="imtcp" streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="x509/name"
       permittedPeer=["medveil-client"])
input(type="imtcp" port="$port" address="127.0.0.1")
template(name="fields" type="string"
         string="PRI=%PRI%|V=%PROTOCOL-VERSION%|TS=%TIMESTAMP:::date-rfc3339%|HOST=%HOSTNAME%|APP=%APP-NAME%|MSGID=%MSGID%|SD=%STRUCTURED-DATA%|MSG=%msg%\n")
action(type="omfile" file="$work/received.log" template="fields")
EOF
"$RSYSLOGD" -n -f "$work/rsyslog.conf" -i "$work/rsyslog.pid" -M "$MODDIR" > rsyslog.out 2>&1 &
rsyslog_pid=$!
for _ in $(seq 1 30); do
    if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1', $port)))" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$rsyslog_pid" 2>/dev/null; then
        cat rsyslog.out
        rsyslog_pid=
        skip "rsyslogd could not start in this environment"
    fi
    sleep 0.1
done
kill -0 "$rsyslog_pid" 2>/dev/null || skip "rsyslogd exited: $(head -c 400 rsyslog.out)"
python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.5); sys.exit(s.connect_ex(('127.0.0.1', $port)))" 2>/dev/null ||
    skip "rsyslogd started but does not listen on 127.0.0.1:$port: $(head -c 600 rsyslog.out)"

# ---- A log with a few events (one hostile actor), sent over TLS with a client certificate.
mkdir -p home/audit
cat > home/audit/events.jsonl <<'EOF'
{"action":"vault.get","actor":"alice","host":"pacs-1","objects":["1.2.840.10008.1.2.3"],"outcome":"success","seq":0,"time":"2026-03-01T08:00:00.000001Z"}
{"action":"auth.unlock","actor":"bob<&>\"","detail":"wrong passphrase","host":"pacs-1","objects":[],"outcome":"failure","seq":1,"time":"2026-03-01T08:01:00.000000Z"}
{"action":"audit.alert","actor":"auditor","detail":"rule=unlock actor=bob day=2026-03-01 observed=5 threshold=5.0","host":"pacs-1","objects":[],"outcome":"success","seq":2,"time":"2026-03-01T09:00:00.000000Z"}
{"action":"vault.put","actor":"carol","host":"pacs-1","objects":["0a1b2c3d4e5f"],"outcome":"success","seq":3,"time":"2026-03-02T10:00:00.123456Z"}
EOF
"${CMD[@]}" export --home home --syslog "127.0.0.1:$port" --tls --ca ca.pem --cert client.pem --key client.key \
    > send.out 2> send.err
rc=$?
[ "$rc" -eq 0 ] || bad "export to rsyslog: exit $rc: $(cat send.err)"
# The name form checks the certificate's DNS name as well.
"${CMD[@]}" export --home home --since 2026-03-02 --syslog "localhost:$port" --tls --ca ca.pem \
    --cert client.pem --key client.key > send2.out 2> send2.err
rc=$?
[ "$rc" -eq 0 ] || bad "export to localhost: exit $rc: $(cat send2.err)"

# rsyslog writes what it received a little later, later still on a loaded machine.
wait_received() {
    for _ in $(seq 1 300); do
        [ -f received.log ] && [ "$(grep -c '^PRI=' received.log)" -ge "$1" ] && return 0
        sleep 0.1
    done
    return 1
}
wait_received 5

# ---- A server certificate from another CA: refused (exit 3), nothing delivered.
before=$(grep -c '^PRI=' received.log 2>/dev/null || echo 0)
"${CMD[@]}" export --home home --syslog "127.0.0.1:$port" --tls --ca other.pem --cert client.pem --key client.key \
    > refuse.out 2> refuse.err
rc=$?
[ "$rc" -eq 3 ] || bad "a server certificate not signed by --ca: exit $rc, want 3: $(cat refuse.err)"
grep -q "not trusted" refuse.err || bad "the refusal does not say why: $(cat refuse.err)"
# Nothing listening: exit 1.
"${CMD[@]}" export --home home --syslog "127.0.0.1:1" --tls --ca ca.pem > closed.out 2> closed.err
rc=$?
[ "$rc" -eq 1 ] || bad "closed port: exit $rc, want 1: $(cat closed.err)"
# A server that reads a little and drops the connection without closing the TLS session:
# the export cannot know what was kept, so it says so and exits 1 (never killed by SIGPIPE).
port2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 - "$port2" "$work" > dropper.out 2>&1 <<'PYEOF' &
import socket, ssl, sys
port, work = int(sys.argv[1]), sys.argv[2]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(work + "/server.pem", work + "/server.key")
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(1)
open(work + "/dropper.ready", "w").close()
srv.settimeout(20)
conn, _ = srv.accept()
tls = ctx.wrap_socket(conn, server_side=True)
tls.recv(100)
tls.close()  # no close_notify: the TCP connection just ends
srv.close()
PYEOF
dropper=$!
for _ in $(seq 1 100); do [ -f dropper.ready ] && break; sleep 0.1; done
"${CMD[@]}" export --home home --syslog "127.0.0.1:$port2" --tls --ca ca.pem > drop.out 2> drop.err
rc=$?
[ "$rc" -eq 1 ] || bad "a server that drops the connection: exit $rc, want 1: $(cat drop.err)"
grep -q -E "lost|closed the connection" drop.err || bad "the drop is not explained: $(cat drop.err)"
wait "$dropper" 2>/dev/null

sleep 0.5
after=$(grep -c '^PRI=' received.log 2>/dev/null || echo 0)
[ "$before" -eq "$after" ] || bad "messages arrived over a refused connection ($before -> $after)"

# ---- What rsyslog parsed, compared with the same messages exported to a file.
"${CMD[@]}" export --home home -o stream.xml 2> stream.err || bad "export -o: $(cat stream.err)"
python3 - "$work/received.log" "$work/stream.xml" <<'PYEOF' || failed=$((failed + 1))
import sys, xml.etree.ElementTree as ET
lines = [l.rstrip("\n") for l in open(sys.argv[1], encoding="utf-8", errors="replace") if l.startswith("PRI=")]
sent = open(sys.argv[2], encoding="utf-8").read().splitlines()
sent = sent + sent[3:]  # the second run sent the last event again
problems = []
if len(lines) != 5:
    problems.append(f"received {len(lines)} messages, want 5 (4 + 1 with --since)")
want = [("vault.get", "85", "110103"), ("auth.unlock", "85", "110114"), ("audit.alert", "84", "110113"),
        ("vault.put", "85", "110107"), ("vault.put", "85", "110107")]
for line, (action, pri, event_id), xml in zip(lines, want, sent):
    fields = dict(part.split("=", 1) for part in line.split("|", 7))
    if fields["PRI"] != pri: problems.append(f"{action}: PRI {fields['PRI']}, want {pri}")
    if fields["V"] != "1": problems.append(f"{action}: version {fields['V']}")
    if fields["APP"] != "medveil": problems.append(f"{action}: APP-NAME {fields['APP']}")
    if fields["MSGID"] != "IHE+RFC-3881": problems.append(f"{action}: MSGID {fields['MSGID']}")
    if fields["HOST"] != "pacs-1": problems.append(f"{action}: HOSTNAME {fields['HOST']}")
    if fields["SD"] != "-": problems.append(f"{action}: structured data {fields['SD']}")
    if not fields["TS"].startswith("2026-03-0"): problems.append(f"{action}: TIMESTAMP {fields['TS']}")
    if not fields["MSG"].startswith("\ufeff"):
        problems.append(f"{action}: MSG does not start with a BOM")
    msg = fields["MSG"].lstrip("\ufeff")
    if msg != xml:
        problems.append(f"{action}: the message received differs from the one exported: {msg[:200]!r}")
    try:
        root = ET.fromstring(msg)
    except ET.ParseError as e:
        problems.append(f"{action}: MSG is not the whole XML message ({e}): {msg[:120]}")
        continue
    if root.find("EventIdentification/EventID").get("csd-code") != event_id:
        problems.append(f"{action}: EventID {root.find('EventIdentification/EventID').attrib}")
    if action == "auth.unlock" and root.find("ActiveParticipant").get("UserID") != 'bob<&>"':
        problems.append("the hostile actor did not survive escaping")
for p in problems:
    print("FAIL:", p)
print(f"rsyslog received {len(lines)} message(s); {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
PYEOF

if [ "$failed" -ne 0 ]; then
    echo "--- rsyslog output"; head -c 2000 rsyslog.out
    echo "--- received"; head -c 3000 received.log 2>/dev/null
    echo "t_audit_syslog: $failed failure(s)"
    exit 1
fi
echo "t_audit_syslog: ok"
