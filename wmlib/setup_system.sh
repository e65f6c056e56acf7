#!/usr/bin/env bash
# System packages the course needs, installed only where missing:
# - shared libraries that the Python stack loads but pip cannot install
#   (OpenCV, imported by SAPIEN, needs libGL and GLib);
# - bubblewrap, the sandbox `make grade` runs student code in;
# - a Vulkan driver for SAPIEN (ManiSkill's simulator and renderer):
#
# - A machine with a GPU Vulkan driver (NVIDIA, or a Mesa GPU driver with a
#   render node) needs nothing: the script says so and stops.
# - Otherwise SAPIEN renders on the CPU through Mesa's lavapipe driver, which
#   must be Mesa >= 23 (Debian 12 ships 22, which lacks a feature SAPIEN uses).
#   On Debian the newer Mesa comes from the release's backports suite; the
#   mirror is read from the apt sources this machine already has.
#
# Idempotent: with everything present it only checks and prints.
# Usage: bash wmlib/setup_system.sh          (uses sudo when not root)
#        bash wmlib/setup_system.sh browser  (only Chromium, for the book's screenshot check)
set -euo pipefail

MIN_MESA=23
export PATH="$PATH:/usr/sbin:/sbin"  # ldconfig
APT_DIR=${APT_DIR:-/etc/apt}   # overridable so tests can read fixture sources
say() { echo "[setup-system] $*"; }

icd_dirs=(/usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d)

gpu_vulkan_present() {
  local f
  for d in "${icd_dirs[@]}"; do
    for f in "$d"/*.json; do
      [ -e "$f" ] || continue
      case "$(basename "$f")" in
        nvidia*) return 0 ;;
        lvp_icd*) ;;  # lavapipe is the CPU driver, not a GPU
        *) [ -e /dev/dri ] && ls /dev/dri/renderD* >/dev/null 2>&1 && return 0 ;;
      esac
    done
  done
  return 1
}

installed_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }

lavapipe_ok() {
  local v
  v=$(installed_version mesa-vulkan-drivers)
  [ -n "$v" ] && dpkg --compare-versions "$v" ge "$MIN_MESA" && [ -n "$(installed_version libvulkan1)" ] &&
    ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else say "needs root for: $*  (no sudo found): run it as root, then 'make setup' again"; exit 1
  fi
}

# Print "URI<TAB>Signed-By" of an existing apt source that serves SUITE/main.
find_mirror() {
  local suite=$1
  # deb822 files (*.sources): one paragraph per source
  for f in "$APT_DIR"/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    awk -v suite="$suite" 'BEGIN{RS=""; FS="\n"}
      { uris=""; suites=""; comps=""; key="";
        for (i=1;i<=NF;i++) { line=$i; sub(/^[ \t]+/,"",line)
          if (line ~ /^URIs:/) { uris=line; sub(/^URIs:[ \t]*/,"",uris) }
          else if (line ~ /^Suites:/) { suites=" " line " " }
          else if (line ~ /^Components:/) { comps=" " line " " }
          else if (line ~ /^Signed-By:/) { key=line; sub(/^Signed-By:[ \t]*/,"",key) } }
        if (index(suites," " suite " ") && index(comps," main ") && uris!="") {
          split(uris,u," "); print u[1] "\t" key; exit } }' "$f"
  done
  # one-line format (sources.list)
  for f in "$APT_DIR"/sources.list "$APT_DIR"/sources.list.d/*.list; do
    [ -e "$f" ] || continue
    awk -v suite="$suite" '$1=="deb" { uri=""; s=""; for(i=2;i<=NF;i++){ if($i ~ /^\[/ ) { while($i !~ /\]$/) i++; continue } if(uri==""){uri=$i; continue} if(s==""){s=$i; continue} if($i=="main" && s==suite){ print uri "\t"; exit } } }' "$f"
  done
}

# shared library -> the Debian package that provides it
LIBS=("libGL.so.1:libgl1" "libglib-2.0.so.0:libglib2.0-0")
apt_updated=""

apt_install() {
  if ! command -v apt-get >/dev/null; then
    say "please install with your system's package manager: $*"; return 1
  fi
  [ -n "$apt_updated" ] || { as_root apt-get update -qq; apt_updated=1; }
  say "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_basics() {
  local missing=() entry
  for entry in "${LIBS[@]}"; do
    ldconfig -p 2>/dev/null | grep -q "${entry%%:*}" || missing+=("${entry#*:}")
  done
  command -v bwrap >/dev/null || missing+=(bubblewrap)
  if [ ${#missing[@]} -eq 0 ]; then
    say "system libraries and bubblewrap are present"
  else
    apt_install "${missing[@]}"
  fi
}

ensure_browser() {
  if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then
    say "Chromium is present"
  else
    apt_install chromium
  fi
}

main() {
  case "${1:-}" in
    browser) ensure_browser ;;
    "") ensure_basics; setup_vulkan ;;
    *) say "unknown argument '$1' (expected nothing or 'browser')"; exit 2 ;;
  esac
}

setup_vulkan() {
  if gpu_vulkan_present; then
    say "a GPU Vulkan driver is present: nothing to install"
    return 0
  fi
  if lavapipe_ok; then
    say "CPU Vulkan driver (Mesa $(installed_version mesa-vulkan-drivers) lavapipe) is present: nothing to install"
    return 0
  fi
  if ! command -v apt-get >/dev/null; then
    say "no GPU Vulkan driver and no apt-get: install Mesa >= $MIN_MESA's lavapipe Vulkan driver"
    say "and the Vulkan loader with your system's package manager, then run 'make setup' again."
    exit 1
  fi

  . /etc/os-release
  codename=${VERSION_CODENAME:-}
  say "no GPU Vulkan driver found: installing Mesa's CPU Vulkan driver (lavapipe, Mesa >= $MIN_MESA)"
  [ -n "$apt_updated" ] || { as_root apt-get update -qq; apt_updated=1; }
  candidate=$(apt-cache policy mesa-vulkan-drivers | awk '/Candidate:/ {print $2}')
  target=()
  if [ -z "$candidate" ] || [ "$candidate" = "(none)" ] || dpkg --compare-versions "$candidate" lt "$MIN_MESA"; then
    if [ "${ID:-}" != debian ] || [ -z "$codename" ]; then
      say "this system's Mesa ($candidate) is older than $MIN_MESA and it is not Debian: upgrade Mesa, then 'make setup' again"
      exit 1
    fi
    backports="$codename-backports"
    list=$APT_DIR/sources.list.d/wmlib-$backports.sources
    if [ ! -e "$list" ]; then
      mirror=$(find_mirror "$codename" | head -n 1)
      [ -n "$mirror" ] || { say "found no apt source for '$codename main' to take the mirror from"; exit 1; }
      uri=${mirror%%$'\t'*}; key=${mirror#*$'\t'}
      say "adding the $backports suite from the mirror this machine already uses ($list)"
      {
        echo "Types: deb"; echo "URIs: $uri"; echo "Suites: $backports"; echo "Components: main"
        [ -n "$key" ] && echo "Signed-By: $key"
      } | as_root tee "$list" >/dev/null
      as_root apt-get update -qq
    fi
    target=(-t "$backports")
  fi
  say "apt-get install ${target[*]} mesa-vulkan-drivers libvulkan1"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${target[@]}" \
    mesa-vulkan-drivers libvulkan1 >/dev/null
  if lavapipe_ok; then
    say "installed Mesa $(installed_version mesa-vulkan-drivers) lavapipe: $(ls /usr/share/vulkan/icd.d/lvp_icd*.json)"
  else
    say "installation finished but Mesa >= $MIN_MESA lavapipe is still missing"; exit 1
  fi
}

# Run only when executed, not when sourced (tests source it to call find_mirror).
if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
