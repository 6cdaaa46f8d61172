"""Generated protobuf and gRPC code of the tryon.v1 contracts (protos/codegen.py)."""
