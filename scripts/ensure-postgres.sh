#!/usr/bin/env bash
# Make sure a PostgreSQL with trust auth answers on 127.0.0.1:5432 for the tests.
# Start the installed cluster if it has stopped; create one if there is none.
set -euo pipefail

ready() { pg_isready -q -h 127.0.0.1 -p 5432; }
ready && exit 0

version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1 || true)
if [ -z "$version" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -n1)
  pg_createcluster "$version" main >/dev/null
fi
hba=/etc/postgresql/$version/main/pg_hba.conf
if ! grep -qE '^host\s+all\s+all\s+127.0.0.1/32\s+trust' "$hba"; then
  # Throw-away test cluster: trust loopback connections, as on the dev machines.
  sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
fi
pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
for _ in $(seq 1 30); do ready && exit 0; sleep 1; done
echo "PostgreSQL did not start on 127.0.0.1:5432." >&2
exit 1
