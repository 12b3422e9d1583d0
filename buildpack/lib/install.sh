# Shared by the classic buildpack (bin/compile) and the Cloud Native Buildpack (bin/build):
# fetch the pinned migrate-guard tarball, verify its sha256, unpack bin/migrate-guard.
# Sourced by bash; every message goes to stdout as buildpack output (`-----> `, `       `, ` !     `).

bp_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

step() { echo "-----> $*"; }
info() { echo "       $*"; }
fail() {
  echo " !     $*"
  exit 1
}

# read_setting NAME ENV_DIR: the app's config var NAME (a file in ENV_DIR), if set.
read_setting() {
  local f="$2/$1"
  if [ -n "$2" ] && [ -f "$f" ]; then tr -d '\n' < "$f"; fi
}

# install_migrate_guard DEST CACHE ENV_DIR: bin/migrate-guard under DEST; the verified tarball
# kept in CACHE (reused while its sha256 matches).
install_migrate_guard() {
  local dest=$1 cache=$2 env_dir=$3
  # shellcheck disable=SC1091
  . "$bp_dir/release.env"
  local url sha
  url=$(read_setting MIGRATE_GUARD_URL "$env_dir")
  sha=$(read_setting MIGRATE_GUARD_SHA256 "$env_dir")
  if [ -n "$url" ] && [ -z "$sha" ]; then
    fail "MIGRATE_GUARD_URL is set without MIGRATE_GUARD_SHA256: a mirror's tarball is verified too. Set both (heroku config:set MIGRATE_GUARD_SHA256=…), or unset MIGRATE_GUARD_URL."
  fi
  if [ -z "$url" ] && [ -n "$sha" ]; then
    fail "MIGRATE_GUARD_SHA256 is set without MIGRATE_GUARD_URL: set both, or neither."
  fi
  url=${url:-$MIGRATE_GUARD_URL}
  sha=${sha:-$MIGRATE_GUARD_SHA256}
  case "$sha" in
    *[!0-9a-f]* | "") fail "MIGRATE_GUARD_SHA256 must be 64 hex digits" ;;
  esac
  [ ${#sha} -eq 64 ] || fail "MIGRATE_GUARD_SHA256 must be 64 hex digits"
  step "Installing migrate-guard ${MIGRATE_GUARD_VERSION} (sha256 ${sha:0:12}…)"
  mkdir -p "$cache"
  local tarball="$cache/migrate-guard-$sha.tar.gz"
  if [ -f "$tarball" ] && echo "$sha  $tarball" | sha256sum --check --status; then
    info "using the cached tarball"
  else
    rm -f "$tarball"
    local part="$tarball.part"
    info "fetching ${url%%\?*}"
    curl --fail --silent --show-error --location --retry 3 --connect-timeout 10 --max-time 300 -o "$part" "$url" ||
      fail "could not fetch migrate-guard from ${url%%\?*}"
    local got
    got=$(sha256sum "$part" | cut -d' ' -f1)
    if [ "$got" != "$sha" ]; then
      rm -f "$part"
      fail "the migrate-guard tarball's sha256 is $got, not the pinned $sha: refusing to install it"
    fi
    mv "$part" "$tarball"
  fi
  mkdir -p "$dest"
  tar -xzf "$tarball" -C "$dest" bin/migrate-guard || fail "the tarball holds no bin/migrate-guard"
  "$dest/bin/migrate-guard" --version >/dev/null || fail "the installed migrate-guard does not run on this stack"
  info "installed $("$dest/bin/migrate-guard" --version)"
}
