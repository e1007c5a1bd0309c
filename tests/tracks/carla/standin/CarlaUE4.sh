#!/bin/sh
# Stand-in for CARLA's CarlaUE4.sh: the fake server takes its place (same flags, same port).
exec "${LBCLOUD_STANDIN_PYTHON:-python3}" "$(dirname "$0")/fake_server.py" "$@"
