{
  "targets": [{
    "target_name": "fuse",
    "include_dirs": [
      "<!(node -e \"require('napi-macros')\")",
      "<!(node -p \"require('fuse-shared-library-linux').include\")"
    ],
    "libraries": [
      "<!(node -p \"require('fuse-shared-library-linux').lib\")"
    ],
    "sources": [
      "fuse-native.c",
      "render-cache.c",
      "locals-pool.c",
      "sd-notify.c",
      "resume-chan.c",
      "fair-queue.c"
    ],
    "cflags": [
      "-g",
      "-O2",
      "-Wall"
    ],
    "ldflags": [
      "-Wl,-rpath,'$$ORIGIN'"
    ]
  }, {
    "target_name": "lxcfs-ts-reattach",
    "type": "executable",
    "sources": [
      "reattach.c"
    ],
    "cflags": [
      "-O2",
      "-Wall",
      "-Wextra"
    ]
  }, {
    "target_name": "postinstall",
    "type": "none",
    "dependencies": ["fuse", "lxcfs-ts-reattach"],
    "copies": [{
      "destination": "build/Release",
      "files": [ "<!(node -p \"require('fuse-shared-library-linux').lib\")" ]
    }]
  }]
}
