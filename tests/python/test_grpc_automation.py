"""Automation against the control API with stock Python gRPC tooling only:
services found by server reflection, health via grpc.health.v1, and a
Salesforce server registered from descriptors fetched by reflection (the way
grpcurl works), with no generated toolgate code."""

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

TOOLGATE_SERVICES = {
    "toolgate.v1.SettingsService",
    "toolgate.v1.CatalogService",
    "toolgate.v1.ServerService",
    "toolgate.v1.ToolService",
    "toolgate.v1.ToolsetService",
    "toolgate.v1.AccessProfileService",
    "toolgate.v1.AccessRequestService",
    "toolgate.v1.UserService",
    "toolgate.v1.AuditService",
    "toolgate.v1.ClientService",
    "toolgate.v1.HeldCallService",
}


def list_services(channel, method):
    call = channel.stream_stream(
        method,
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    responses = call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    return {s.name for r in responses for s in r.list_services_response.service}


def test_reflection_lists_every_service_on_v1alpha_and_v1(daemon):
    with grpc.insecure_channel(daemon.grpc) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        v1alpha = {s.name for r in responses for s in r.list_services_response.service}
        assert TOOLGATE_SERVICES <= v1alpha
        assert "grpc.health.v1.Health" in v1alpha
        # v1 has the same messages on another path.
        v1 = list_services(channel, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
        assert TOOLGATE_SERVICES <= v1


def test_health_reports_serving(daemon):
    with grpc.insecure_channel(daemon.grpc) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ["", "toolgate.v1.ServerService", "toolgate.v1.AuditService"]:
            reply = health.Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, service


def reflected_method(channel, full_method):
    """A callable for `package.Service/Method`, with message classes built
    from descriptors fetched by reflection."""
    database = ProtoReflectionDescriptorDatabase(channel)
    pool = descriptor_pool.DescriptorPool(database)
    service_name, method_name = full_method.split("/")
    method = pool.FindServiceByName(service_name).FindMethodByName(method_name)
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    call = channel.unary_unary(
        f"/{service_name}/{method_name}",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    return request_class, call


def test_register_a_salesforce_server_by_reflection(daemon):
    auth = [("authorization", f"Bearer {daemon.admin_token}"), ("x-toolgate-actor", "python-ci")]
    with grpc.insecure_channel(daemon.grpc) as channel:
        Register, register = reflected_method(channel, "toolgate.v1.ServerService/RegisterServer")
        request = json_format.ParseDict(
            {
                "catalogKind": "salesforce",
                "name": "Acme production",
                "toolPrefix": "acme",
                "loginHost": {"kind": "LOGIN_HOST_KIND_MY_DOMAIN", "url": "https://acme.my.salesforce.com"},
                "apiVersion": "v66.0",
            },
            Register(),
        )
        try:
            register(request)
            raise AssertionError("a call without the admin token must fail")
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED

        reply = json_format.MessageToDict(register(request, metadata=auth))
        server = reply["server"]
        assert server["toolPrefix"] == "acme"
        assert server["loginHost"]["url"] == "https://acme.my.salesforce.com"
        assert server["callbackUrl"].endswith("/auth/callback")
        assert len(reply["discovery"]["added"]) == 13
        assert "acme_query" in reply["discovery"]["added"]

        try:
            register(request, metadata=auth)
            raise AssertionError("a duplicate name must fail")
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.ALREADY_EXISTS

        ListTools, list_tools = reflected_method(channel, "toolgate.v1.ToolService/ListTools")
        tools = json_format.MessageToDict(
            list_tools(
                json_format.ParseDict(
                    {"serverId": server["id"], "state": "TOOL_STATE_PENDING_REVIEW"}, ListTools()
                ),
                metadata=auth,
            )
        )
        assert tools["totalSize"] == 13

        ListEvents, list_events = reflected_method(channel, "toolgate.v1.AuditService/ListEvents")
        events = json_format.MessageToDict(
            list_events(json_format.ParseDict({"actionPrefix": "server."}, ListEvents()), metadata=auth)
        )
        assert events["events"][0]["actor"] == "admin:python-ci"
        assert events["events"][0]["action"] == "server.register"


def test_ai_clients_and_sign_in_settings_by_reflection(daemon):
    """An admin script governs AI clients (a personal access token's here)
    and sets the identity provider, whose secret never comes back."""
    auth = [("authorization", f"Bearer {daemon.admin_token}")]
    with grpc.insecure_channel(daemon.grpc) as channel:

        def call(method, body):
            Request, rpc = reflected_method(channel, method)
            return json_format.MessageToDict(rpc(json_format.ParseDict(body, Request()), metadata=auth))

        user = call("toolgate.v1.UserService/CreateUser", {"email": "ci@example.com"})["user"]
        call("toolgate.v1.UserService/IssueToken", {"userId": user["id"], "name": "nightly"})
        clients = call("toolgate.v1.ClientService/ListClients", {"ownerUserId": user["id"]})["clients"]
        assert [c["name"] for c in clients] == ["nightly"]
        client = clients[0]
        assert client["origin"] == "CLIENT_ORIGIN_ACCESS_TOKEN"
        assert client["clientType"] == "CLIENT_TYPE_PERSONAL"
        assert client["ownerEmail"] == "ci@example.com"
        assert client["trafficEnabled"] is True

        updated = call(
            "toolgate.v1.ClientService/UpdateClient",
            {
                "id": client["id"],
                "clientType": "CLIENT_TYPE_EPHEMERAL",
                "trafficEnabled": False,
                "expectedRevision": client.get("revision", "0"),
            },
        )["client"]
        assert updated["clientType"] == "CLIENT_TYPE_EPHEMERAL"
        assert "trafficEnabled" not in updated  # false is the default, left out
        try:
            call(
                "toolgate.v1.ClientService/UpdateClient",
                {"id": client["id"], "name": "renamed", "expectedRevision": client.get("revision", "0")},
            )
            raise AssertionError("a stale revision must fail")
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.ABORTED

        revoked = call("toolgate.v1.ClientService/RevokeClient", {"id": client["id"]})
        assert revoked["revokedCredentials"] == 1
        assert revoked["client"]["state"] == "CLIENT_STATE_CLOSED"

        secret = "python-idp-secret-0451"
        settings = call(
            "toolgate.v1.SettingsService/UpdateSettings",
            {
                "identityProvider": {
                    "issuerUrl": "https://login.acme.example",
                    "clientId": "toolgate",
                    "clientSecret": secret,
                    "allowedEmailDomains": ["acme.example"],
                }
            },
        )["settings"]
        provider = settings["signIn"]["identityProvider"]
        assert provider["clientSecretSet"] is True
        assert len(provider["clientSecretFingerprint"]) == 8
        assert provider["emailClaim"] == "email"
        assert secret not in str(settings)
        try:
            call(
                "toolgate.v1.SettingsService/UpdateSettings",
                {"identityProvider": {"issuerUrl": "http://login.acme.example", "clientId": "toolgate"}},
            )
            raise AssertionError("an http issuer off loopback must fail")
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert err.details().startswith("identity_provider.issuer_url:")
