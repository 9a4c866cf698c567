//! Compiles `proto/toolgate/v1/*.proto` with the vendored `protoc`, so a fresh
//! machine builds with cargo alone, and writes the file descriptor set that
//! server reflection serves.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let protos = [
        "proto/toolgate/v1/settings.proto",
        "proto/toolgate/v1/catalog.proto",
        "proto/toolgate/v1/server.proto",
        "proto/toolgate/v1/tool.proto",
        "proto/toolgate/v1/toolset.proto",
        "proto/toolgate/v1/access_profile.proto",
        "proto/toolgate/v1/user.proto",
        "proto/toolgate/v1/audit.proto",
        "proto/toolgate/v1/connection.proto",
        "proto/toolgate/v1/client.proto",
        "proto/toolgate/v1/access_request.proto",
        "proto/toolgate/v1/hook.proto",
        "proto/toolgate/v1/held_call.proto",
    ];
    let vendored_include = protoc_bin_vendored::include_path()?;
    let vendored_include = vendored_include
        .to_str()
        .ok_or("the vendored protoc include path is not UTF-8")?;
    let includes = ["proto", vendored_include];

    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // Messages that carry secrets get a hand-written, redacting Debug
    // (in src/lib.rs) so that no `{:?}` can ever print them.
    config.skip_debug([
        ".toolgate.v1.ConfigureAuthenticationRequest",
        ".toolgate.v1.IssueTokenResponse",
        ".toolgate.v1.IdentityProviderInput",
    ]);

    // Decode errors answer INVALID_ARGUMENT, not tonic-prost's INTERNAL
    // (see src/codec.rs).
    tonic_prost_build::configure()
        .codec_path("crate::codec::InvalidArgumentCodec")
        .file_descriptor_set_path(out_dir.join("toolgate_v1_descriptor.bin"))
        .compile_with_config(config, &protos, &includes)?;
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    Ok(())
}
