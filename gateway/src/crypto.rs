//! Secrets at rest and random credentials.
//!
//! Owns the master key (from `TOOLGATE_MASTER_KEY` or `<data-dir>/master.key`,
//! created with mode 0600 on first start), sealing and opening values with
//! XChaCha20-Poly1305 bound to their record key as associated data, and the
//! generation and hashing of bearer tokens. It never logs or formats a key or
//! a plaintext: [`MasterKey`]'s `Debug` prints nothing secret.

use std::fs;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Length of the master key in bytes.
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
/// First byte of a sealed value: the sealing format version.
const SEAL_VERSION: u8 = 1;

/// Errors of this module. Messages never include key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The key given in `TOOLGATE_MASTER_KEY` or the key file is not 64 hex
    /// digits (or 43 base64url characters).
    #[error(
        "the master key in {source_name} is not 32 bytes as 64 hex digits or unpadded base64url"
    )]
    BadKey {
        /// Where the key came from.
        source_name: String,
    },
    /// The key file could not be read or created.
    #[error("master key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A sealed value did not open: wrong master key, wrong record key, or
    /// tampered data.
    #[error("a sealed value could not be opened (wrong master key, or the data was altered)")]
    Open,
    /// The data directory holds a database but its master key is missing.
    #[error(
        "{path} is missing but the data directory already holds a database: restore the master key (or set TOOLGATE_MASTER_KEY); a new key could not open its sealed secrets"
    )]
    KeyMissing {
        /// The key file expected.
        path: String,
    },
    /// The operating system's random source failed.
    #[error("the system random number generator failed: {0}")]
    Random(String),
}

/// The AEAD master key. Cloning copies the key; `Debug` redacts it.
#[derive(Clone)]
pub struct MasterKey([u8; KEY_LEN]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// Parses a key written as 64 hex digits or 43 unpadded base64url
    /// characters (surrounding whitespace ignored).
    pub fn parse(text: &str, source_name: &str) -> Result<Self, CryptoError> {
        let text = text.trim();
        let bytes = hex::decode(text)
            .ok()
            .or_else(|| URL_SAFE_NO_PAD.decode(text).ok())
            .filter(|b| b.len() == KEY_LEN)
            .ok_or_else(|| CryptoError::BadKey {
                source_name: source_name.to_owned(),
            })?;
        let mut key = [0u8; KEY_LEN];
        key.copy_from_slice(&bytes);
        Ok(Self(key))
    }

    /// The key as 64 lowercase hex digits, the form of `master.key`: for
    /// writing a key file only (it is the secret itself).
    pub(crate) fn to_hex(&self) -> zeroize::Zeroizing<String> {
        zeroize::Zeroizing::new(hex::encode(self.0))
    }

    /// A fresh random key.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut key = [0u8; KEY_LEN];
        fill_random(&mut key)?;
        Ok(Self(key))
    }

    /// Loads the key: `env_value` (from `TOOLGATE_MASTER_KEY`) wins; else
    /// `<data_dir>/master.key` is read, or, for a data directory without a
    /// database yet (`<data_dir>/db`), created with mode 0600 holding a new
    /// random key as hex.
    ///
    /// Errors: [`CryptoError::KeyMissing`] when the database exists but the
    /// key file does not (nothing is written: a new key could not open the
    /// existing secrets, and a stray file would hide the real problem).
    pub fn load_or_create(env_value: Option<&str>, data_dir: &Path) -> Result<Self, CryptoError> {
        if let Some(value) = env_value {
            return Self::parse(value, "TOOLGATE_MASTER_KEY");
        }
        let path = data_dir.join("master.key");
        let path_name = path.display().to_string();
        match fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text, &path_name),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                if data_dir.join("db").exists() {
                    return Err(CryptoError::KeyMissing { path: path_name });
                }
                let key = Self::generate()?;
                write_private_file(&path, hex::encode(key.0).as_bytes()).map_err(|source| {
                    CryptoError::KeyFile {
                        path: path_name,
                        source,
                    }
                })?;
                Ok(key)
            }
            Err(source) => Err(CryptoError::KeyFile {
                path: path_name,
                source,
            }),
        }
    }

    /// Seals `plaintext` bound to `record_key` (associated data). Output:
    /// version byte, 24-byte random nonce, ciphertext with 16-byte tag.
    pub fn seal(&self, record_key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: record_key,
                },
            )
            // Encryption fails only for inputs beyond 256 GiB.
            .map_err(|_| CryptoError::Open)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// A 32-byte key for one `purpose` (e.g. `query-cursor-mac`), derived
    /// from the master key with HKDF-SHA256 (RFC 5869, no salt, `info` =
    /// `toolgate/<purpose>`). Different purposes give independent keys, so
    /// a key handed to one subsystem never opens or signs another's data.
    pub fn derive(&self, purpose: &str) -> [u8; KEY_LEN] {
        let hk = hkdf::Hkdf::<Sha256>::new(None, &self.0);
        let mut out = [0u8; KEY_LEN];
        // 32 bytes is far below HKDF-SHA256's limit of 255 * 32.
        let _ = hk.expand(format!("toolgate/{purpose}").as_bytes(), &mut out);
        out
    }

    /// Opens a value sealed by [`MasterKey::seal`] under the same record key.
    pub fn open(&self, record_key: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != SEAL_VERSION {
            return Err(CryptoError::Open);
        }
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        cipher
            .decrypt(
                XNonce::from_slice(&sealed[1..=NONCE_LEN]),
                Payload {
                    msg: &sealed[1 + NONCE_LEN..],
                    aad: record_key,
                },
            )
            .map_err(|_| CryptoError::Open)
    }
}

/// Fills `buf` from the operating system's random source.
pub fn fill_random(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buf).map_err(|e| CryptoError::Random(e.to_string()))
}

/// A new bearer token: `prefix` then 32 random bytes as unpadded base64url
/// (43 characters).
pub fn random_token(prefix: &str) -> Result<String, CryptoError> {
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes)?;
    Ok(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// SHA-256 of `data` as lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Writes `contents` to a new file readable only by its owner (mode 0600 on
/// Unix), atomically: a temporary file is written and synced, then renamed,
/// so a crash never leaves a partial file. Fails if the file exists.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if path.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} already exists", path.display()),
        ));
    }
    let mut suffix = [0u8; 6];
    fill_random(&mut suffix).map_err(std::io::Error::other)?;
    let temp = path.with_extension(format!("tmp-{}", hex::encode(suffix)));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&temp).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()
    });
    match written.and_then(|()| fs::rename(&temp, path)) {
        Ok(()) => {
            if let Some(dir) = path.parent() {
                // Make the rename itself durable.
                fs::File::open(dir).and_then(|d| d.sync_all()).ok();
            }
            Ok(())
        }
        Err(err) => {
            fs::remove_file(&temp).ok();
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_differ_by_purpose_and_master_key() {
        let a = MasterKey::parse(&"11".repeat(32), "test").unwrap();
        let b = MasterKey::parse(&"22".repeat(32), "test").unwrap();
        assert_eq!(a.derive("query-cursor-mac"), a.derive("query-cursor-mac"));
        assert_ne!(a.derive("query-cursor-mac"), a.derive("other"));
        assert_ne!(a.derive("query-cursor-mac"), b.derive("query-cursor-mac"));
        assert_ne!(a.derive("query-cursor-mac"), a.0);
    }

    #[test]
    fn seal_round_trips_and_binds_the_record_key() {
        let key = MasterKey::generate().unwrap();
        let sealed = key.seal(b"server/1/client_secret", b"s3cret").unwrap();
        assert_eq!(
            key.open(b"server/1/client_secret", &sealed).unwrap(),
            b"s3cret"
        );
        assert!(matches!(
            key.open(b"server/2/client_secret", &sealed),
            Err(CryptoError::Open)
        ));
        let other = MasterKey::generate().unwrap();
        assert!(other.open(b"server/1/client_secret", &sealed).is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(key.open(b"server/1/client_secret", &tampered).is_err());
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
    }

    #[test]
    fn key_parses_hex_and_base64url_and_rejects_others() {
        let hex_key = "00".repeat(32);
        assert!(MasterKey::parse(&hex_key, "test").is_ok());
        let b64 = URL_SAFE_NO_PAD.encode([7u8; 32]);
        assert!(MasterKey::parse(&format!(" {b64}\n"), "test").is_ok());
        let err = MasterKey::parse("abcd", "TOOLGATE_MASTER_KEY").unwrap_err();
        assert!(err.to_string().contains("TOOLGATE_MASTER_KEY"));
        assert!(!format!("{:?}", MasterKey::generate().unwrap()).contains("0"));
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let first = MasterKey::load_or_create(None, dir.path()).unwrap();
        let second = MasterKey::load_or_create(None, dir.path()).unwrap();
        // A database without its key is refused, and no new key appears.
        let restored = tempfile::tempdir().unwrap();
        std::fs::create_dir(restored.path().join("db")).unwrap();
        let err = MasterKey::load_or_create(None, restored.path()).unwrap_err();
        assert!(matches!(err, CryptoError::KeyMissing { .. }), "{err}");
        assert!(!restored.path().join("master.key").exists());
        assert_eq!(first.0, second.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join("master.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn tokens_have_prefix_and_length() {
        let token = random_token("tgp_").unwrap();
        assert!(token.starts_with("tgp_"));
        assert_eq!(token.len(), 4 + 43);
        assert_ne!(token, random_token("tgp_").unwrap());
    }
}
