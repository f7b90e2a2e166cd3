#!/bin/sh
# Regenerates frontend/onnx/onnxpb from the official ONNX schema.
#
#   tools/gen-proto.sh            (or: go generate ./frontend/onnx/onnxpb)
#
# Pins: ONNX 1.23.2 (the schema), protoc-gen-go v1.36.12 (matching the
# google.golang.org/protobuf version in go.mod), protoc from Debian's
# protobuf-compiler package. It installs what is missing: protoc with
# apt-get, protoc-gen-go with `go install`, and the onnx wheel into a
# throwaway virtual environment (the wheel carries onnx.in.proto and
# gen_proto.py, ONNX's own generator of onnx-ml.proto3).
set -eu
ONNX_VERSION=1.23.2
PROTOC_GEN_GO_VERSION=v1.36.12
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/frontend/onnx/onnxpb"

if ! command -v protoc >/dev/null 2>&1; then
	apt-get update -qq && apt-get install -y -qq protobuf-compiler
fi
gobin=$(go env GOPATH)/bin
if [ ! -x "$gobin/protoc-gen-go" ] || ! "$gobin/protoc-gen-go" --version | grep -q "${PROTOC_GEN_GO_VERSION#v}"; then
	go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "onnx==$ONNX_VERSION"
site=$("$work/venv/bin/python" -c 'import onnx, os; print(os.path.dirname(onnx.__file__))')
cp "$site/gen_proto.py" "$site/onnx.in.proto" "$work/"
(cd "$work" && "$work/venv/bin/python" gen_proto.py -m -o "$work/gen" onnx >/dev/null)
cp "$work/gen/onnx-ml.proto3" "$out/onnx-ml.proto3"

cd "$out"
PATH="$gobin:$PATH" protoc --go_out=. --go_opt=paths=source_relative \
	--go_opt=Monnx-ml.proto3=github.com/tfc-compiler/tfc/frontend/onnx/onnxpb \
	onnx-ml.proto3
echo "regenerated $out/onnx-ml.proto3.pb.go from ONNX $ONNX_VERSION"
