#!/usr/bin/env bash
# CI for netloop's interop module: gRPC interop cases, WebSockets and
# h2load against both net.Listen and netloop.Listen, plus the examples.
# Installs what it needs (h2load from nghttp2-client); runs on a clean
# Debian/Ubuntu machine with Go at /usr/local/go or on PATH.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/local/go/bin"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

step() { printf '\n=== %s (%ss)\n' "$*" "$SECONDS"; }

step "toolchain"
if ! command -v go >/dev/null; then
	echo "go is not installed (expected at /usr/local/go/bin or on PATH)" >&2
	exit 1
fi
go version
if ! command -v h2load >/dev/null; then
	sudo=""
	if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
	if command -v apt-get >/dev/null; then
		echo "installing h2load (nghttp2-client)"
		log=$(mktemp)
		if ! { $sudo apt-get update -qq &&
			$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client; } >"$log" 2>&1; then
			cat "$log" >&2
			exit 1
		fi
		rm -f "$log"
	else
		echo "no h2load and no apt-get: TestH2load will skip" >&2
	fi
fi
command -v h2load >/dev/null && h2load --version
go mod download

step "gofmt"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi

step "go vet"
go vet ./...

step "go build (interop module and its examples)"
go build ./...

step "go build (the root module's examples)"
(cd .. && go build ./examples/...)

step "go test -race"
go test -race -count=1 -timeout 8m ./...

step "done"
