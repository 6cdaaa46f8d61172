"""Server reflection under both names clients use: ``grpc.reflection.v1`` and ``grpc.reflection.v1alpha``.

grpcio-reflection ships only the v1alpha service, while current tools (grpcurl, Postman, grpcui)
ask v1 first. The two protocols are the same messages in another package, field for field, so
one servicer answers both: v1 calls are decoded with the v1alpha messages, and the v1 file
descriptor, built from the v1alpha one, is added to the default pool so that reflection can
describe the v1 service too.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

V1ALPHA_SERVICE_NAME = reflection.SERVICE_NAME
V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
_V1_FILE = "grpc/reflection/v1/reflection.proto"


def _register_v1_descriptor(pool: descriptor_pool.DescriptorPool) -> None:
    """Add ``grpc/reflection/v1/reflection.proto`` to ``pool``: v1alpha's file with v1's names."""
    try:
        pool.FindFileByName(_V1_FILE)
        return
    except KeyError:
        pass
    file_proto = descriptor_pb2.FileDescriptorProto.FromString(reflection_pb2.DESCRIPTOR.serialized_pb)
    old_package, new_package = file_proto.package, V1_SERVICE_NAME.rpartition(".")[0]
    file_proto.name = _V1_FILE
    file_proto.package = new_package
    file_proto.ClearField("options")
    prefix, renamed = f".{old_package}.", f".{new_package}."
    for message in file_proto.message_type:
        for field in message.field:
            if field.type_name.startswith(prefix):
                field.type_name = renamed + field.type_name.removeprefix(prefix)
    for service in file_proto.service:
        for method in service.method:
            method.input_type = renamed + method.input_type.removeprefix(prefix)
            method.output_type = renamed + method.output_type.removeprefix(prefix)
    pool.AddSerializedFile(file_proto.SerializeToString())


def enable_reflection(server: grpc.Server, service_names: Iterable[str]) -> None:
    """Serve reflection of ``service_names`` and of both reflection services on ``server``."""
    pool = descriptor_pool.Default()
    _register_v1_descriptor(pool)
    servicer = reflection.ReflectionServicer([*service_names, V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME], pool=pool)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1_handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(V1_SERVICE_NAME, {"ServerReflectionInfo": v1_handler}),)
    )
