"""Stubs generated from proto/prognos/v1/rul.proto by scripts/gen_proto.sh. Do not edit."""
