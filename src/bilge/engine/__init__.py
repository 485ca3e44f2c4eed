"""engine: everything that speaks to a container engine.

`base` is the Engine protocol and its capabilities, `docker` its Docker
implementation, `hosts` host resolution (-H, DOCKER_HOST, contexts); `transport`,
`stdhttp` (http.client) and `sdkhttp` (docker-py, for TLS and ssh://) move the
bytes, each request under a deadline and a size limit; `buildkit` asks BuildKit
for the build cache where the Engine API would walk the whole disk.
"""
