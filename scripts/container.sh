#!/usr/bin/env bash
# Build the Dockerfile and run the very command the image runs, with podman, on a machine that has
# the package indexes but no image registry: the base image is Debian bookworm made by debootstrap
# (python3 included) and imported into podman; podman runs with runc, cgroupfs and host networking.
# Prints the image size, then checks: the health check, the token rule, a real image analysed, a
# non-root user, and that the image refuses to listen without a token.
#
#   sudo scripts/container.sh          # about 5-10 minutes the first time (debootstrap, pip)
#
# Environment: IMAGE (default localhost/emolens:latest), WORK (scratch folder, default /var/tmp/emolens-container),
# PORT (the image's port, 8000, must be free on the host: the container shares its network).
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${IMAGE:-localhost/emolens:latest}
BASE=localhost/emolens-base:bookworm
WORK=${WORK:-/var/tmp/emolens-container}
PORT=8000
TOKEN="container-check-$RANDOM$RANDOM"
NAME="emolens-check-$$"
mkdir -p "$WORK"

if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman runc debootstrap >/dev/null
fi
cat >"$WORK/containers.conf" <<CONF
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
export CONTAINERS_CONF="$WORK/containers.conf"

if ! podman image exists "$BASE"; then
  echo "== base image: debootstrap bookworm (minbase + python3)"
  rm -rf "$WORK/rootfs"
  nice -n 10 debootstrap --variant=minbase --include=python3,python3-venv bookworm "$WORK/rootfs" \
    http://deb.debian.org/debian >/dev/null
  tar -C "$WORK/rootfs" -c . | podman import - "$BASE" >/dev/null
  rm -rf "$WORK/rootfs"
fi

echo "== build"
# The host's CA bundle goes into the build (read-only), for a network that inspects TLS.
nice -n 10 podman build --network host --format docker --build-arg BASE="$BASE" \
  -v /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro --build-arg CA_BUNDLE=/run/host-ca.crt \
  -t "$IMAGE" . >"$WORK/build.log" 2>&1 \
  || { tail -30 "$WORK/build.log"; exit 1; }
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "image $IMAGE: $((size / 1000000)) MB"

echo "== the image's own command, without a token: must refuse to listen beyond localhost"
if out=$(podman run --rm --network host "$IMAGE" 2>&1); then
  echo "FAIL: the image served without a token"; exit 1
fi
grep -q "emolens: error: binding to 0.0.0.0 exposes the service" <<<"$out" || { echo "FAIL: $out"; exit 1; }

echo "== the image's own command, with a token"
cleanup() { podman rm -f "$NAME" >/dev/null 2>&1 || true; }
trap cleanup EXIT
podman run -d --name "$NAME" --network host -e EMOLENS_TOKEN="$TOKEN" "$IMAGE" >/dev/null
for _ in $(seq 120); do
  curl -fsS -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 1
done
curl -fsS -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/readyz"; echo
podman healthcheck run "$NAME" && echo "health check: healthy"
[ "$(podman exec "$NAME" id -u)" = 10001 ] && echo "user: $(podman exec "$NAME" id -un) (uid 10001)"
status=$(curl -s -o /dev/null -w '%{http_code}' --data-binary @assets/astronaut.jpg -H 'Content-Type: image/jpeg' \
  "http://127.0.0.1:$PORT/v1/images")
[ "$status" = 401 ] && echo "without the token: 401"
answer=$(curl -fsS --data-binary @assets/astronaut.jpg -H 'Content-Type: image/jpeg' \
  -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/v1/images")
python3 -c 'import json, sys; faces = json.loads(sys.argv[1])["faces"]; assert len(faces) == 1 and faces[0]["dominant"] == "happy", faces; print("astronaut.jpg:", faces[0]["dominant"], faces[0]["probs"]["happy"])' "$answer"
echo "container check passed"
