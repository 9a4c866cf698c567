//! Bytes that are not a valid protobuf message, sent as raw gRPC frames to a
//! daemon started in-process on port 0: every `toolgate.v1` service answers
//! `INVALID_ARGUMENT` naming the message type (tonic-prost's own codec says
//! `INTERNAL`), an unauthenticated caller learns only `UNAUTHENTICATED`, and
//! nothing is written.

mod common;

use common::{admin, clients, start};
use prost::bytes::{Buf, BufMut};
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};
use toolgate_proto::v1;

/// Sends and receives message bodies as they are, so a test can put any
/// bytes in a gRPC frame.
#[derive(Debug, Clone, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining()).to_vec()))
    }
}

/// Calls `path` with `body` as the one request message; the status of the
/// answer (the first message, for a server stream).
async fn call_raw(
    addr: std::net::SocketAddr,
    auth: impl Interceptor,
    path: &'static str,
    body: Vec<u8>,
) -> Result<(), Status> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(InterceptedService::new(channel, auth));
    grpc.ready().await.unwrap();
    let path = PathAndQuery::from_static(path);
    if path.path().ends_with("/StreamEvents") {
        let mut stream = grpc
            .server_streaming(Request::new(body), path, RawCodec)
            .await?
            .into_inner();
        stream.message().await?;
    } else {
        grpc.unary(Request::new(body), path, RawCodec).await?;
    }
    Ok(())
}

/// Field 1, wire type 7: no such wire type.
const BAD_WIRE_TYPE: &[u8] = &[0x0f];
/// Field 1 as a length-delimited value of 5 bytes, of which 1 is sent.
const TRUNCATED: &[u8] = &[0x0a, 0x05, b'a'];
/// Field 1 (a string in every request below) holding bytes that are not
/// UTF-8.
const NOT_UTF8: &[u8] = &[0x0a, 0x02, 0xff, 0xfe];

#[tokio::test]
async fn requests_that_do_not_decode_are_invalid_argument_for_every_service() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, token) = start(dir.path()).await;
    let calls: [(&'static str, &str); 13] = [
        (
            "/toolgate.v1.SettingsService/UpdateSettings",
            "UpdateSettingsRequest",
        ),
        (
            "/toolgate.v1.CatalogService/ListCatalogEntries",
            "ListCatalogEntriesRequest",
        ),
        (
            "/toolgate.v1.ServerService/RegisterServer",
            "RegisterServerRequest",
        ),
        (
            "/toolgate.v1.ServerService/ConfigureAuthentication",
            "ConfigureAuthenticationRequest",
        ),
        ("/toolgate.v1.ToolService/ListTools", "ListToolsRequest"),
        (
            "/toolgate.v1.ToolsetService/CreateToolset",
            "CreateToolsetRequest",
        ),
        (
            "/toolgate.v1.AccessProfileService/CreateAccessProfile",
            "CreateAccessProfileRequest",
        ),
        ("/toolgate.v1.UserService/CreateUser", "CreateUserRequest"),
        ("/toolgate.v1.AuditService/ListEvents", "ListEventsRequest"),
        (
            "/toolgate.v1.AuditService/StreamEvents",
            "StreamEventsRequest",
        ),
        (
            "/toolgate.v1.ConnectionService/ListConnections",
            "ListConnectionsRequest",
        ),
        (
            "/toolgate.v1.ClientService/ListClients",
            "ListClientsRequest",
        ),
        ("/toolgate.v1.HookService/GetHook", "GetHookRequest"),
    ];
    for (path, message) in calls {
        // What prost says about the truncated field depends on field 1's
        // type (a wrong wire type, or a buffer underflow).
        for (body, reason) in [(BAD_WIRE_TYPE, "invalid wire type"), (TRUNCATED, "")] {
            let err = call_raw(daemon.grpc_addr, admin(&token), path, body.to_vec())
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{path}: {err:?}");
            assert!(
                err.message().starts_with(&format!(
                    "the message does not decode as toolgate.v1 {message}: "
                )),
                "{path}: {}",
                err.message()
            );
            assert!(err.message().contains(reason), "{path}: {}", err.message());
        }
    }
    // A string field that is not UTF-8 is a decode error too.
    let err = call_raw(
        daemon.grpc_addr,
        admin(&token),
        "/toolgate.v1.UserService/CreateUser",
        NOT_UTF8.to_vec(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("UTF-8"), "{}", err.message());

    // Without the admin token the caller learns only that.
    let err = call_raw(
        daemon.grpc_addr,
        |request: Request<()>| Ok::<_, Status>(request),
        "/toolgate.v1.UserService/CreateUser",
        BAD_WIRE_TYPE.to_vec(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // Nothing was written, and the daemon still answers well-formed calls.
    let mut c = clients(daemon.grpc_addr, admin(&token)).await;
    let users = c
        .users
        .list_users(v1::ListUsersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(users.users.is_empty(), "{users:?}");
    let servers = c
        .servers
        .list_servers(v1::ListServersRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(servers.servers.is_empty(), "{servers:?}");
    daemon.stop().await.unwrap();
}
