#!/usr/bin/python3
"""Checks bootstrap JSON files against Envoy's own API.

  envoy_api.py build DEPS OUT.pb     descriptor set of the Bootstrap message
  envoy_api.py check OUT.pb FILE...  parse each FILE as Bootstrap, strictly

DEPS is the deps/ folder of the npm package @grpc/grpc-js-xds, which ships
Envoy's .proto files with their imports. "check" uses protobuf's
json_format.Parse, the same strict JSON parser Envoy applies to a bootstrap:
an unknown field, a wrong type or an unknown enum value fails it, and so does
a typed_config whose @type is not in the descriptor set.

The validate.proto bundled in that package is older than the Envoy files that
use it; its rules are annotations, not part of the JSON schema, so "build"
completes a private copy with the option fields protoc reports missing.
Run it with Debian's /usr/bin/python3, which has python3-protobuf.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

# The messages of every typed_config the agent renders, beside Bootstrap.
PROTOS = [
    "envoy/config/bootstrap/v3/bootstrap.proto",
    "envoy/extensions/filters/network/http_connection_manager/v3/"
    "http_connection_manager.proto",
    "envoy/extensions/filters/http/router/v3/router.proto",
    "envoy/extensions/access_loggers/file/v3/file.proto",
    "envoy/config/trace/v3/zipkin.proto",
    "envoy/extensions/upstreams/http/v3/http_protocol_options.proto",
    "envoy/extensions/transport_sockets/tls/v3/tls.proto",
    "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto",
]

MISSING = re.compile(r'Message type "validate\.(\w+)" has no field named "(\w+)"')


def complete_validate(path, missing):
    """Adds "optional bool NAME = N;" to each message named in missing."""
    text = open(path).read()
    number = 9000
    for msg, fields in sorted(missing.items()):
        m = re.search(r"\nmessage %s \{\n" % re.escape(msg), text)
        if m is None:
            sys.exit("envoy_api: validate.%s not found" % msg)
        add = ""
        for f in sorted(fields):
            number += 1
            add += "    optional bool %s = %d;\n" % (f, number)
        text = text[: m.end()] + add + text[m.end():]
    open(path, "w").write(text)


def build(deps, out):
    work = tempfile.mkdtemp(prefix="envoy-api.")
    try:
        vdir = os.path.join(work, "validate")
        os.makedirs(vdir)
        vproto = os.path.join(vdir, "validate.proto")
        shutil.copy(os.path.join(deps, "protoc-gen-validate/validate/validate.proto"),
                    vproto)
        cmd = ["protoc", "-I" + work, "-I" + os.path.join(deps, "envoy-api"),
               "-I" + os.path.join(deps, "googleapis"),
               "-I" + os.path.join(deps, "xds"), "-I/usr/include",
               "--include_imports", "-o", out + ".tmp"] + PROTOS
        missing = {}
        for _ in range(20):
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode == 0:
                os.rename(out + ".tmp", out)
                return 0
            found = {}
            for msg, field in MISSING.findall(p.stderr):
                if field not in missing.get(msg, set()):
                    found.setdefault(msg, set()).add(field)
            if not found:
                sys.stderr.write(p.stderr)
                return 1
            for msg, fields in found.items():
                missing.setdefault(msg, set()).update(fields)
            shutil.copy(os.path.join(deps, "protoc-gen-validate/validate/validate.proto"),
                        vproto)
            complete_validate(vproto, missing)
        sys.stderr.write(p.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check(pb, files):
    from google.protobuf import descriptor_pb2, descriptor_pool, json_format
    from google.protobuf import message_factory

    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(open(pb, "rb").read())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    desc = pool.FindMessageTypeByName("envoy.config.bootstrap.v3.Bootstrap")
    if hasattr(message_factory, "GetMessageClass"):
        cls = message_factory.GetMessageClass(desc)
    else:
        cls = message_factory.MessageFactory(pool).GetPrototype(desc)
    bad = 0
    for name in files:
        msg = cls()
        try:
            json_format.Parse(open(name).read(), msg, descriptor_pool=pool)
        except json_format.ParseError as e:
            print("%s: INVALID: %s" % (name, e))
            bad += 1
            continue
        print("%s: ok (%d bytes as protobuf)" % (name, msg.ByteSize()))
    return 1 if bad else 0


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "build":
        return build(sys.argv[2], sys.argv[3])
    if len(sys.argv) >= 4 and sys.argv[1] == "check":
        return check(sys.argv[2], sys.argv[3:])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
