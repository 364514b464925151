#!/usr/bin/env bash
# Checks what can be checked of deploy/ without a container engine or a
# cluster (none runs here): YAML lint of the compose file, the manifests and
# the configs; systemd-analyze verify of the unit; the Dockerfile's build and
# runtime stages reproduced as plain commands.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== yamllint"
python3 -m yamllint -d '{extends: relaxed, rules: {line-length: {max: 160}}}' \
  deploy/docker-compose.yml deploy/k8s/ config/

echo "== kubernetes manifests"
python3 - <<'PY'
import yaml
docs = [d for d in yaml.safe_load_all(open("deploy/k8s/dropfeed.yaml")) if d]
kinds = {d["kind"] for d in docs}
assert {"Deployment", "ConfigMap", "Secret", "Service"} <= kinds, kinds
dep = next(d for d in docs if d["kind"] == "Deployment")
spec = dep["spec"]["template"]["spec"]
assert dep["spec"]["replicas"] == 2
c = spec["containers"][0]
assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
assert spec["initContainers"][0]["args"] == ["migrate"]
assert spec["securityContext"]["runAsNonRoot"] is True
# The archive is shared object storage, its keys in a Secret; the spool is
# each replica's own.
config = yaml.safe_load(next(d for d in docs if d["kind"] == "ConfigMap" and "dropfeed.yaml" in d["data"])["data"]["dropfeed.yaml"])
assert config["archive"]["url"].startswith("s3://"), config["archive"]
refs = {r["secretRef"]["name"] for r in c["envFrom"]}
keys = next(d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "dropfeed-archive-keys")
assert "dropfeed-archive-keys" in refs and set(keys["stringData"]) == {"ARCHIVE_ACCESS_KEY_ID", "ARCHIVE_SECRET_ACCESS_KEY"}
spool = next(v for v in spec["volumes"] if v["name"] == "spool")
assert "emptyDir" in spool, spool
print("ok:", sorted(kinds))
compose = yaml.safe_load(open("deploy/docker-compose.yml"))
svc = compose["services"]
assert "garage" in svc and svc["dropfeed"]["environment"]["DROPFEED_ARCHIVE__URL"].startswith("s3://")
assert "/var/lib/dropfeed/spool" in svc["dropfeed"]["volumes"], "each replica its own spool volume"
print("ok: compose with garage")
PY

echo "== systemd unit"
if command -v systemd-analyze >/dev/null; then
  test -x target/release/dropfeed || cargo build --release --locked --bin dropfeed
  tmp=$(mktemp -d)
  sed "s#/usr/local/bin/dropfeed#$PWD/target/release/dropfeed#" deploy/systemd/dropfeed.service > "$tmp/dropfeed.service"
  systemd-analyze verify "$tmp/dropfeed.service"
  rm -rf "$tmp"
  echo ok
else
  echo "systemd-analyze not installed: skipped"
fi

echo "== Dockerfile stages as plain commands"
# build stage: what `COPY` brings must exist, then the same cargo command.
for f in Cargo.toml Cargo.lock src migrations config/dropfeed.yaml; do test -e "$f" || { echo "missing $f"; exit 1; }; done
cargo build --release --locked --bin dropfeed
cp target/release/dropfeed "${TMPDIR:-/tmp}/dropfeed-stripped" && strip "${TMPDIR:-/tmp}/dropfeed-stripped"
# runtime stage: the binary starts with the image's entrypoint arguments.
"${TMPDIR:-/tmp}/dropfeed-stripped" --config config/dropfeed.yaml --help >/dev/null
ls -l "${TMPDIR:-/tmp}/dropfeed-stripped" | awk '{print "stripped binary:", $5, "bytes"}'
echo "deploy checks passed"
