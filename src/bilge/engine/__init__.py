"""engine: everything that speaks to a container engine.

`docker` is the Engine protocol and its Docker implementation, with host
resolution (-H, DOCKER_HOST, contexts); `transport`, `unixhttp` and `sdkhttp`
move the bytes, each request under a deadline and a size limit; `buildkit` asks
BuildKit for the build cache where the Engine API would walk the whole disk.
"""
