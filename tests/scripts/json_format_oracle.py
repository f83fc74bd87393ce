"""Renders protobuf messages as proto3 JSON with Python's google.protobuf.json_format (upb, the
C++ semantics Envoy's transcoder has): the oracle for the gateway's HTTP/JSON answers.

Reads one JSON object from stdin:
  {"descriptor_set": <path>, "options": {"proto_names": bool, "emit_defaults": bool,
   "enum_numbers": bool}, "messages": [{"type": "pkg.Msg", "bytes": <base64>}, ...]}
and writes a JSON array with each message's rendering, parsed back into a value.
"""

import base64
import json
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory


def main() -> None:
    request = json.load(sys.stdin)
    fds = descriptor_pb2.FileDescriptorSet()
    with open(request["descriptor_set"], "rb") as f:
        fds.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for file in fds.file:
        pool.Add(file)
    options = request["options"]
    out = []
    for item in request["messages"]:
        cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(item["type"]))
        message = cls()
        message.ParseFromString(base64.b64decode(item["bytes"]))
        text = json_format.MessageToJson(
            message,
            preserving_proto_field_name=options["proto_names"],
            always_print_fields_with_no_presence=options["emit_defaults"],
            use_integers_for_enums=options["enum_numbers"],
            indent=None,
        )
        out.append(json.loads(text))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
