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
sam build --build-in-source --template-file infra/template.yaml --build-dir "$build_dir"
echo "sam build: $(( $(date +%s) - start )) s"

# Every AWS::Serverless::Function of the template has a bootstrap built for arm64 (ELF e_machine 183)
# with the release profile's `panic = "unwind"`: the landing pads of our code and its dependencies fill
# `.gcc_except_table` (200+ KB here). With panic = "abort" only the prebuilt std's remain: 4.3 KB in a
# small program built both ways on this machine (4.9 KB with unwind), hence the 64 KB floor.
functions=$(grep -B1 -E '^    Type: AWS::Serverless::Function$' infra/template.yaml | sed -n 's/^  \([A-Za-z0-9]*\):$/\1/p')
python3 - "$build_dir" $functions <<'PY'
import struct, sys
build_dir, functions = sys.argv[1], sys.argv[2:]
def elf(path):
    data = open(path, "rb").read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return "not ELF64", 0
    arch = {183: "arm64", 62: "x86_64"}.get(struct.unpack_from("<H", data, 18)[0], "?")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names = sections[shstrndx][4]
    def name(s):
        start = names + s[0]
        return data[start:data.index(b"\0", start)].decode()
    table = sum(s[5] for s in sections if name(s) == ".gcc_except_table")
    return arch, table
failed = False
print(f"{'function':<28} {'bytes':>10} {'MB':>6}  arch   .gcc_except_table (unwind)")
for fn in functions:
    path = f"{build_dir}/{fn}/bootstrap"
    try:
        arch, table = elf(path)
        size = len(open(path, "rb").read())
    except OSError as e:
        print(f"sam-build: no bootstrap for {fn}: {e}", file=sys.stderr)
        failed = True
        continue
    ok = arch == "arm64" and table >= 65536
    failed |= not ok
    print(f"{fn:<28} {size:>10} {size / 1e6:>6.2f}  {arch:<6} {table} bytes{'' if ok else '  <- FAILED'}")
if failed:
    sys.exit("sam-build: FAILED (every function needs an arm64 bootstrap built with panic = \"unwind\")")
print(f"sam-build: {len(functions)} functions, each with an arm64 bootstrap (panic = unwind) in {build_dir}")
PY
