"""gRPC front end: ``prognos.v1.RulService`` (proto/prognos/v1/rul.proto), health, reflection, client.

``server.build_server`` assembles the server; ``client.RulClient`` calls it; ``v1`` holds the
generated stubs (scripts/gen_proto.sh).
"""
