"""Message classes for the few protos the server reads or answers that no installed package ships.

`tensorflow-serving-api` carries TF Serving's request and config protos but
not `SSLConfig`, and grpcio carries no `grpc.health.v1` messages. Each is a
handful of scalar fields, declared here by name and field number in
`FileDescriptorProto` text, in a pool of their own so that a package that
does ship them later cannot clash with these.
"""

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format


def message_classes(file_descriptor_text):
    """The message classes of one `.proto` file given as `FileDescriptorProto` text, by short name."""
    proto = text_format.Parse(file_descriptor_text, descriptor_pb2.FileDescriptorProto())
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    prefix = f"{proto.package}." if proto.package else ""
    return {
        message.name: message_factory.GetMessageClass(pool.FindMessageTypeByName(prefix + message.name))
        for message in proto.message_type
    }
