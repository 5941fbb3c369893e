"""Generated from proto/dlep/v1/management.proto by scripts/gen_proto.py; do not edit."""
