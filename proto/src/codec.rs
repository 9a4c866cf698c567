//! The protobuf codec every generated `toolgate.v1` service and client uses
//! (set through `tonic_prost_build::Builder::codec_path` in `build.rs`).
//!
//! It is tonic-prost's [`ProstCodec`] with one change: a message that does
//! not decode answers `INVALID_ARGUMENT` instead of `INTERNAL`. tonic-prost
//! maps every prost decode error to `INTERNAL`, which tells an automation
//! engineer who sent bad bytes that the daemon is broken; the request is
//! what is wrong, so `INVALID_ARGUMENT` ("the client specified an invalid
//! argument", gRPC status codes,
//! <https://grpc.github.io/grpc/core/md_doc_statuscodes.html>) is the code
//! to act on. Encoding is tonic-prost's, unchanged.
//!
//! The same codec decodes responses in the generated clients (the console),
//! where a response that does not decode would also read `INVALID_ARGUMENT`;
//! the message names the type that failed, which tells the two apart.
//! Server reflection and `grpc.health.v1` are tonic-reflection's and
//! tonic-health's own services with their own codec; this one does not
//! reach them.

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstCodec, ProstEncoder};

/// A [`Codec`] for `application/grpc+proto`: encodes `T` and decodes `U`
/// with prost; a `U` that does not decode is `Status::invalid_argument`
/// with a message naming the type and prost's reason (for example
/// "the message does not decode as toolgate.v1 ListToolsRequest: failed to
/// decode Protobuf message: invalid wire type value: 7").
#[derive(Debug, Clone)]
pub struct InvalidArgumentCodec<T, U> {
    inner: ProstCodec<T, U>,
}

impl<T, U> Default for InvalidArgumentCodec<T, U> {
    fn default() -> Self {
        Self {
            inner: ProstCodec::new(),
        }
    }
}

impl<T, U> Codec for InvalidArgumentCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = InvalidArgumentDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.inner.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        InvalidArgumentDecoder {
            _message: PhantomData,
        }
    }
}

/// Decodes one `U` per gRPC frame; see [`InvalidArgumentCodec`].
#[derive(Debug, Clone)]
pub struct InvalidArgumentDecoder<U> {
    _message: PhantomData<U>,
}

impl<U: Message + Default> Decoder for InvalidArgumentDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf)
            .map(Some)
            .map_err(|error| Status::invalid_argument(decode_error_message::<U>(&error)))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

/// "the message does not decode as toolgate.v1 <Type>: <prost's reason>".
fn decode_error_message<U>(error: &prost::DecodeError) -> String {
    let full = std::any::type_name::<U>();
    // `toolgate_proto::v1::ListToolsRequest` -> `ListToolsRequest`.
    let short = full.rsplit("::").next().unwrap_or(full);
    format!("the message does not decode as toolgate.v1 {short}: {error}")
}

#[cfg(test)]
mod tests {
    use super::decode_error_message;
    use crate::v1;

    #[test]
    fn decode_errors_name_the_message_type_and_prost_reason() {
        use prost::Message;
        let error = v1::ListToolsRequest::decode(&[0x0f_u8][..]).unwrap_err();
        let message = decode_error_message::<v1::ListToolsRequest>(&error);
        assert!(
            message.starts_with("the message does not decode as toolgate.v1 ListToolsRequest: "),
            "{message}"
        );
        assert!(message.contains("invalid wire type"), "{message}");
    }
}
