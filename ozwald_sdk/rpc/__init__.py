"""Thin typed wrappers over the generated stubs: one class per service and flavour.

Every call takes an explicit timeout and metadata and raises `OzwaldError` subclasses
instead of grpc.RpcError. Retries, defaults and correlation ids live one layer up, in
the clients users touch.
"""
