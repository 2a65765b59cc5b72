#!/bin/bash
# quic-interop-runner entry point for Petrel (hq-interop; see interop/endpoint.ts).
# In the official image (/setup.sh and /wait-for-it.sh from quic-network-simulator-endpoint) it
# sets up the simulated network first; without Docker it just runs the endpoint, and every path
# can be overridden: WWW, DOWNLOADS, CERTS, LOGS, PORT, HOST, SSLKEYLOGFILE, QLOGDIR, REPORT.
set -e
if [ -x /setup.sh ]; then /setup.sh; fi
if [ "$ROLE" = client ] && [ -x /wait-for-it.sh ] && [ -z "$NO_SIM_WAIT" ]; then
  /wait-for-it.sh sim:57832 -s -t 30
fi
case "$TESTCASE" in
  ecn) echo "petrel: test case ecn unsupported (node:dgram cannot read or set ECN)"; exit 127 ;;
esac
if [ -n "$LOGS" ] || [ -d /logs ]; then
  LOGS=${LOGS:-/logs}
  mkdir -p "$LOGS"
fi
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
cd "$ROOT"
exec node --conditions=petrel-src --import tsx --enable-source-maps "$ROOT/interop/endpoint.ts"
