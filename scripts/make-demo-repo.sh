#!/usr/bin/env bash
# Makes a small real build repo: a git checkout with .flox/pkgs recipes named like a real PyTorch
# matrix. Each recipe is a tiny real Nix derivation (built with /bin/sh, no nixpkgs) that prints
# what a PyTorch build prints — CMake's summary, ninja's [n/N] progress — in a few seconds.
#   make-demo-repo.sh DIR [STEPS]
set -euo pipefail
dir="$1"
steps="${2:-24}"
mkdir -p "$dir/.flox/pkgs/lib" "$dir/.flox/env"
cd "$dir"

# Shared code imported by every recipe: not a package of its own.
cat > .flox/pkgs/lib/mkDemoTorch.nix <<'NIX'
# A stand-in for a real PyTorch derivation: same log shape, seconds instead of hours.
{ name, cuda ? null, gpuArch ? null, isa }:
derivation {
  inherit name;
  system = builtins.currentSystem;
  builder = "/bin/sh";
  PATH = "/bin:/usr/bin";
  demoRun = "@DEMO_RUN@";  # a new demo builds anew instead of finding old outputs
  args = [ "-c" ''
    echo "-- The CXX compiler identification is GNU 13.3.0"
    echo "-- Building for ISA: ${isa}"
    ${if cuda != null then ''
      echo "-- Found CUDA: /nix/store/cuda-${cuda} (found version \"${cuda}\")"
      echo "-- CUDA architectures: ${gpuArch}"
      echo "--   USE_CUDA              : ON"
    '' else ''
      echo "--   USE_CUDA              : OFF"
    ''}
    echo "-- Configuring done"
    i=1
    while [ $i -le @STEPS@ ]; do
      echo "[$i/@STEPS@] Building CXX object caffe2/CMakeFiles/torch_cpu.dir/part$i.cpp.o"
      sleep 0.2
      i=$((i + 1))
    done
    mkdir -p $out/lib/python3.13/site-packages/torch $out/bin
    echo "${name}" > $out/lib/python3.13/site-packages/torch/version.txt
    # A stand-in for the artifact's Python: it answers ptbuild's verification probe with what a
    # real torch of this variant reports.
    printf '%s\n' '#!/bin/sh' \
      'echo "{\"torch_version\": \"2.10.0\", \"cuda_version\": ${if cuda != null then "\\\"${cuda}\\\"" else "null"}, \"arch_flags\": [${if gpuArch != null then "\\\"${gpuArch}\\\"" else ""}], \"cuda_available\": false}"' \
      > $out/bin/python3
    chmod +x $out/bin/python3
  '' ];
}
NIX
sed -i -e "s/@STEPS@/${steps}/g" -e "s/@DEMO_RUN@/$(date +%s%N)/" .flox/pkgs/lib/mkDemoTorch.nix

recipe() {  # name cuda gpuArch isa
  local cuda_arg="" arch_arg=""
  [ "$2" != "-" ] && cuda_arg="cuda = \"$2\"; "
  [ "$3" != "-" ] && arch_arg="gpuArch = \"$3\"; "
  cat > ".flox/pkgs/$1.nix" <<NIX
{ }:
import ./lib/mkDemoTorch.nix { name = "$1"; ${cuda_arg}${arch_arg}isa = "$4"; }
NIX
}
recipe pytorch-python313-cuda12_8-sm90-avx512  12.8 sm_90  avx512
recipe pytorch-python313-cuda13_0-sm90-avx512  13.0 sm_90  avx512
recipe pytorch-python313-cuda13_0-sm90-avx2    13.0 sm_90  avx2
recipe pytorch-python313-cuda13_0-sm120-avx512 13.0 sm_120 avx512
recipe pytorch-python313-cuda13_0-sm120-avx2   13.0 sm_120 avx2
recipe pytorch-python313-cuda13_0-sm86-avx2    13.0 sm_86  avx2
recipe pytorch-python313-cpu-avx2              -    -      avx2
recipe pytorch-python313-cpu-avx512            -    -      avx512

echo 'version = 1' > .flox/env/manifest.toml
if [ ! -d .git ]; then
  git init -q
  git -c user.name=ptbuild -c user.email=ptbuild@localhost commit -q --allow-empty -m "empty"
fi
git add -A
git -c user.name=ptbuild -c user.email=ptbuild@localhost commit -q -m "demo recipes" || true
