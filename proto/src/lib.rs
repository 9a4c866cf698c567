//! The `toolgate.v1` control API: messages and tonic clients and servers
//! generated from `proto/toolgate/v1/*.proto`. Generated code is never edited
//! by hand; the daemon converts to and from its domain types in
//! `toolgate_gateway::control`.

/// Package `toolgate.v1`. See the `.proto` files for field meanings and errors.
#[allow(missing_docs, clippy::all)]
pub mod v1 {
    tonic::include_proto!("toolgate.v1");

    /// The encoded `FileDescriptorSet` of every `toolgate.v1` file, for server
    /// reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("toolgate_v1_descriptor");
}
