#!/usr/bin/env bash
# Formats, lints and regenerates the protobuf code under gen/. buf comes from
# the tools module (it needs a pre-release protobuf that the service's own
# go.mod must not pull in); the plugins are tool entries of go.mod, except
# protoc-gen-es (the TypeScript client in gen/ts), an npm package pinned in
# clients/node/package-lock.json and installed into clients/node/node_modules.
set -euo pipefail
cd "$(dirname "$0")/.."
buf() { go tool -modfile=tools/go.mod buf "$@"; }
buf format -w
buf lint
npm ci --prefix clients/node --no-audit --no-fund # protoc-gen-es, pinned, for buf generate
buf generate
# embed cannot reach into gen/, which buf regenerates from scratch.
cp gen/openapi/ibmail.swagger.json apidocs/ibmail.swagger.json
