#!/usr/bin/env bash
# `make deb`: builds target/debian/credd_<version>-<revision>_amd64.deb with cargo-deb from a
# release build (package metadata: [package.metadata.deb] in daemon/Cargo.toml; files: packaging/).
#
#   scripts/build-deb.sh [cargo-deb options...]
#
# 1. installs cargo-deb from crates.io when it is missing (or older than 3.x);
# 2. generates credctl(8) and credctl's bash completion from credctl's clap definition
#    (packaging/gen), and gzips the documentation, into target/packaging/;
# 3. runs cargo-deb, which builds credd, credctl and pam_credd.so in release mode and packs them.
# The path of the package is the last line of standard output.
set -euo pipefail

cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
CARGO_DEB_VERSION=3.8.0
OUT=target/packaging
# Documentation shipped in /usr/share/doc/credd (gzip'd, as Debian policy asks of large files).
DOCS=(README.md docs/operations.md docs/pam.md docs/migration.md docs/lockout.md docs/resets.md
  docs/audit.md docs/alerts.md docs/import.md docs/threat-model.md)

log() { echo "build-deb: $*" >&2; }

# 1. cargo-deb
have_cargo_deb() {
  local v
  v=$("$CARGO" deb --version 2>/dev/null | awk '{print $2}') || return 1
  [ -n "$v" ] && [ "${v%%.*}" -ge 3 ] 2>/dev/null
}
if ! have_cargo_deb; then
  log "installing cargo-deb $CARGO_DEB_VERSION from crates.io"
  "$CARGO" install cargo-deb --locked --version "$CARGO_DEB_VERSION" >&2
fi

# The changelog's top entry names the version the package gets; they must agree.
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
revision=$(sed -n 's/^revision *= *"\(.*\)"/\1/p' daemon/Cargo.toml)
changelog=$(sed -n '1s/^credd (\([^)]*\)).*/\1/p' packaging/debian/changelog)
if [ "$changelog" != "$version-$revision" ]; then
  log "packaging/debian/changelog starts with $changelog, the package would be $version-$revision;"
  log "add a changelog entry for $version-$revision"
  exit 1
fi

# Reproducible dates: the man page's date and the files' times come from the last commit.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH

# 2. generated files
rm -rf "$OUT"
"$CARGO" run --quiet --release -p credd-packaging -- packaging/man/credctl.8.in "$OUT"
mkdir -p "$OUT/doc"
for doc in "${DOCS[@]}"; do
  gz="$OUT/doc/${doc##*/}.gz"
  gzip -9n <"$doc" >"$gz"
done

# 3. the package
log "cargo deb -p credd $*"
# cargo-deb warns that sources under ../target/packaging/ are not built by Cargo: they are ours.
"$CARGO" deb -p credd "$@" >"$OUT/cargo-deb.out" 2> >(grep -v "are detected as Cargo target dir" >&2)
deb=$(tail -n 1 "$OUT/cargo-deb.out")
if [ ! -f "$deb" ]; then
  cat "$OUT/cargo-deb.out" >&2
  log "cargo-deb did not name a package file"
  exit 1
fi
log "built $deb"
echo "$deb"
