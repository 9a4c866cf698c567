"""Bytes that are not a protobuf message, sent with stock grpcio to a real
toolgated: INVALID_ARGUMENT naming the message, not INTERNAL, and the daemon
keeps answering."""

import grpc
import pytest


def raw_call(channel, method):
    """A call that sends its request bytes as they are."""
    return channel.unary_unary(
        method,
        request_serializer=lambda raw: raw,
        response_deserializer=lambda raw: raw,
    )


@pytest.mark.parametrize(
    "method, message, body",
    [
        ("/toolgate.v1.UserService/ListUsers", "ListUsersRequest", b"\x0f"),
        ("/toolgate.v1.ToolService/ListTools", "ListToolsRequest", b"\x0a\x05ab"),
        ("/toolgate.v1.UserService/CreateUser", "CreateUserRequest", b"\x0a\x02\xff\xfe"),
    ],
)
def test_undecodable_requests_are_invalid_argument(daemon, method, message, body):
    auth = [("authorization", f"Bearer {daemon.admin_token}")]
    with grpc.insecure_channel(daemon.grpc) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            raw_call(channel, method)(body, metadata=auth, timeout=30)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.details().startswith(
            f"the message does not decode as toolgate.v1 {message}: "
        ), refused.value.details()
        # An empty message is a valid ListUsersRequest: the daemon still answers.
        assert raw_call(channel, "/toolgate.v1.UserService/ListUsers")(
            b"", metadata=auth, timeout=30
        ) == b""
