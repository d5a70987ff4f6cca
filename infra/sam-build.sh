#!/usr/bin/env bash
# `make sam-build`: builds the SAM application the way `sam build` does for a user (cargo-lambda,
# arm64, zig), offline, then proves every function got an arm64 `bootstrap` and prints their sizes.
# Usage: infra/sam-build.sh <sam venv> <build dir>
set -euo pipefail
venv="$(cd "$1" && pwd)"
build_dir="$2"
cd "$(dirname "$0")/.."
export PATH="$venv/bin:$PATH" SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline

echo "$(sam --version); $(cargo lambda --version); zig $(python-zig version 2>/dev/null || echo '?')"
start=$(date +%s)
sam build --beta-features --template-file infra/template.yaml --build-dir "$build_dir"
echo "sam build: $(( $(date +%s) - start )) s"

# Every AWS::Serverless::Function of the template has a bootstrap built for arm64 (ELF e_machine 183).
functions=$(grep -B1 -E '^    Type: AWS::Serverless::Function$' infra/template.yaml | sed -n 's/^  \([A-Za-z0-9]*\):$/\1/p')
missing=0
printf '%-30s %12s  %s\n' function bytes arch
for fn in $functions; do
  f="$build_dir/$fn/bootstrap"
  if [ ! -x "$f" ]; then
    echo "sam-build: no executable bootstrap for $fn ($f)" >&2
    missing=1
    continue
  fi
  arch=$(python3 -c 'import sys; h=open(sys.argv[1],"rb").read(20); print({183:"arm64",62:"x86_64"}.get(int.from_bytes(h[18:20],"little"),"?") if h[:4]==b"\x7fELF" else "not ELF")' "$f")
  printf '%-30s %12d  %s\n' "$fn" "$(stat -c %s "$f")" "$arch"
  [ "$arch" = arm64 ] || missing=1
done
[ "$missing" -eq 0 ] || { echo "sam-build: FAILED" >&2; exit 1; }
echo "sam-build: $(wc -w <<<"$functions") functions, each with an arm64 bootstrap in $build_dir"
