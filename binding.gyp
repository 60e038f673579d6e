# The node-gyp description of the same native build CMakeLists.txt drives with
# cmake-js: the pinned libbpf from source (static), the BPF objects (clang
# -target bpf, with BTF) and the N-API addon build/Release/berth.node.
# Source lists and BPF flags come from native/sources.json, shared with CMake.
#
# Differences from CMakeLists.txt, on purpose:
# - libbpf is built by an action at build time (CMake does it at configure
#   time), so its include and archive paths are the in-tree ones by
#   construction, and the build fails, saying so, if scripts/build-libbpf.sh
#   falls back to the system's libbpf-dev: that fallback is cmake-js only.
# - BERTH_LIBBPF_BUILD_VERSION is the release pinned in scripts/fetch-libbpf.sh
#   (CMake takes the newest symbol version in libbpf.map; both are 1.5.0 today).
#
# Never run node-gyp where cmake-js builds: both use ./build.
{
  "variables": {
    "variables": {
      "libbpf_dir%": "<(module_root_dir)/build/libbpf",
    },
    "libbpf_dir%": "<(libbpf_dir)",
    "libbpf_include": "<(libbpf_dir)/root/usr/include",
    "libbpf_uapi": "<(libbpf_dir)/src/include/uapi",
    "libbpf_version": "<!(sed -n 's/^LIBBPF_VERSION=//p' scripts/fetch-libbpf.sh)",
    "bpf_out": "<(module_root_dir)/build/bpf",
    "bpf_cflags": ["<!@(node -p \"require('./native/sources.json').bpfCflags.join(' ')\")"],
    "bpf_includes": [
      "-I", "<(module_root_dir)/bpf/include",
      "-I", "<(module_root_dir)/bpf",
      "-I", "<(libbpf_dir)/root/usr/include",
      "-I", "<(libbpf_dir)/src/include/uapi",
      "-idirafter", "/usr/include/<!(gcc -print-multiarch 2>/dev/null || true)",
    ],
    "bpf_headers": ["<!@(find bpf -name '*.h' | sort)"],
  },
  "targets": [
    {
      # scripts/build-libbpf.sh prints mode=, version=, include=, lib=, uapi=;
      # kept in build/libbpf.info for anyone who wants to look. gyp's make
      # backend re-runs a multi-output action on every build: that is cheap,
      # the script itself knows when libbpf is up to date.
      "target_name": "libbpf",
      "type": "none",
      "actions": [
        {
          "action_name": "build_libbpf",
          "message": "libbpf: in-tree build into <(libbpf_dir)",
          "inputs": ["scripts/build-libbpf.sh", "scripts/fetch-libbpf.sh"],
          "outputs": ["<(libbpf_dir)/libbpf.a", "<(libbpf_dir).info"],
          "action": [
            "bash", "-c",
            "bash scripts/build-libbpf.sh '<(libbpf_dir)' >'<(libbpf_dir).info.tmp' && cat '<(libbpf_dir).info.tmp' && grep -qx mode=in-tree '<(libbpf_dir).info.tmp' && mv '<(libbpf_dir).info.tmp' '<(libbpf_dir).info' || { echo 'binding.gyp: no in-tree libbpf (see above and <(libbpf_dir).info.tmp). The node-gyp build links only the pinned in-tree libbpf.a; the libbpf-dev fallback is cmake-js only: npm run build:native' >&2; exit 1; }",
          ],
        },
      ],
    },
    {
      "target_name": "bpf_objects",
      "type": "none",
      "dependencies": ["libbpf"],
      "sources": ["<!@(node -p \"require('./native/sources.json').bpf.join(' ')\")"],
      "rules": [
        {
          "rule_name": "bpf",
          "extension": "c",
          "message": "BPF <(RULE_INPUT_PATH)",
          "inputs": ["<@(bpf_headers)", "<(libbpf_dir)/libbpf.a"],
          "outputs": ["<(bpf_out)/<(RULE_INPUT_ROOT).bpf.o"],
          "action": ["clang", "<@(bpf_cflags)", "<@(bpf_includes)", "-c", "<(RULE_INPUT_PATH)", "-o", "<@(_outputs)"],
          "process_outputs_as_sources": 0,
        },
      ],
    },
    {
      "target_name": "bpf_test_objects",
      "type": "none",
      "dependencies": ["libbpf"],
      "sources": ["<!@(node -p \"require('./native/sources.json').bpfTest.join(' ')\")"],
      "rules": [
        {
          "rule_name": "bpf_test",
          "extension": "c",
          "message": "BPF <(RULE_INPUT_PATH)",
          "inputs": ["<@(bpf_headers)", "<(libbpf_dir)/libbpf.a"],
          "outputs": ["<(bpf_out)/test/<(RULE_INPUT_ROOT).bpf.o"],
          "action": ["clang", "<@(bpf_cflags)", "<@(bpf_includes)", "-c", "<(RULE_INPUT_PATH)", "-o", "<@(_outputs)"],
          "process_outputs_as_sources": 0,
        },
      ],
    },
    {
      "target_name": "berth",
      "dependencies": ["libbpf", "bpf_objects", "bpf_test_objects"],
      "sources": ["<!@(node -p \"require('./native/sources.json').addon.join(' ')\")"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<(libbpf_include)",
        "bpf/include",
        "bpf/demo",
        # libbpf's UAPI copy is newer than the distribution's linux-libc-dev (tcx, netdev.h, etc.).
        "<(libbpf_uapi)",
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "BERTH_LIBBPF_MODE=\"in-tree\"",
        "BERTH_LIBBPF_BUILD_VERSION=\"<(libbpf_version)\"",
      ],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=gnu++17", "-fexceptions"],
      "libraries": ["<(libbpf_dir)/libbpf.a", "-lelf", "-lz"],
      # libbpf stays private to the addon: its symbols are not exported from berth.node.
      "ldflags": ["-Wl,--exclude-libs,ALL"],
    },
  ],
}
