#!/usr/bin/env bash
# Installs the real registry clients and the reference registry that Quayside's conformance tests
# drive (Debian 12 packages). Idempotent: installs only what is missing, and runs `apt-get update`
# at most once, only when something has to be installed. Needs root (or passwordless sudo).
set -euo pipefail

# package -> a file it ships that proves it is installed
declare -A PROBE=(
  [skopeo]=/usr/bin/skopeo
  [podman]=/usr/bin/podman
  [buildah]=/usr/bin/buildah
  [umoci]=/usr/bin/umoci
  [busybox-static]=/bin/busybox
  [docker-registry]=/usr/bin/docker-registry
  # podman/buildah as root in a container: vfs storage needs nothing, but these keep the
  # overlay driver and user-namespace mappings usable when a test asks for them.
  [fuse-overlayfs]=/usr/bin/fuse-overlayfs
  [uidmap]=/usr/bin/newuidmap
  [containers-storage]=/usr/share/containers/storage.conf
  # test/e2e/ctr.test.ts starts its own containerd (temp root, socket and config) and drives ctr.
  [containerd]=/usr/bin/ctr
)
ORDER=(skopeo podman buildah umoci busybox-static docker-registry fuse-overlayfs uidmap containers-storage containerd)

SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-test-deps: need root or sudo" >&2; exit 1; }
  SUDO="sudo"
fi

missing=()
for pkg in "${ORDER[@]}"; do
  # Docker's containerd.io conflicts with Debian's containerd: installing ours would remove Docker.
  # Any containerd + ctr on PATH will do.
  if [ "$pkg" = containerd ] && command -v containerd >/dev/null 2>&1 && command -v ctr >/dev/null 2>&1; then
    continue
  fi
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || [ ! -e "${PROBE[$pkg]}" ]; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-test-deps: all present (${ORDER[*]})"
else
  echo "install-test-deps: installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # The docker-registry package would start a registry on :5000 at install time; a policy-rc.d
  # that answers 101 forbids service starts. Reuse one the image already has, else add ours.
  added_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    added_policy=1
  fi
  trap 'if [ -n "$added_policy" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi' EXIT
  # `apt-get update` only when the lists are empty or an install from them fails.
  if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then
    $SUDO apt-get update -q
    updated=1
  fi
  if ! $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"; then
    if [ -z "${updated:-}" ]; then
      $SUDO apt-get update -q
      $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
    else
      exit 1
    fi
  fi
fi

# Never leave the packaged registry enabled or running: tests start their own on ephemeral ports,
# and a stray one on :5000 would hide port mistakes.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
elif [ -x /etc/init.d/docker-registry ]; then
  $SUDO /etc/init.d/docker-registry stop >/dev/null 2>&1 || true
  $SUDO update-rc.d docker-registry disable >/dev/null 2>&1 || true
fi

for tool in skopeo podman buildah umoci docker-registry ctr; do
  printf '  %-16s %s\n' "$tool" "$("$tool" --version 2>&1 | head -n1)"
done
printf '  %-16s %s\n' busybox "$(/bin/busybox 2>&1 | head -n1)"
