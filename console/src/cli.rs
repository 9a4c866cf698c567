//! Command-line flags and where the admin token comes from.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// `toolgate`: the admin console of a toolgated daemon.
#[derive(Clone, clap::Parser)]
#[command(name = "toolgate", version, about, long_about = None)]
pub struct Args {
    /// The daemon's control API (gRPC) address.
    #[arg(
        long,
        env = "TOOLGATE_GRPC_ADDR",
        default_value = "http://127.0.0.1:50051"
    )]
    pub grpc_addr: String,
    /// The admin token. Prefer TOOLGATE_ADMIN_TOKEN or --data-dir: a flag
    /// is visible to other local users in the process list.
    #[arg(long, hide_env_values = true)]
    pub token: Option<String>,
    /// The daemon's data directory, to read `admin.token` from when neither
    /// --token nor TOOLGATE_ADMIN_TOKEN is given [default: ./toolgate-data].
    #[arg(long, env = "TOOLGATE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Your name in the audit log (`admin:<name>`) [default: $USER].
    #[arg(long, env = "TOOLGATE_ACTOR")]
    pub actor: Option<String>,
}

impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Args")
            .field("grpc_addr", &self.grpc_addr)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("data_dir", &self.data_dir)
            .field("actor", &self.actor)
            .finish()
    }
}

/// Why no admin token could be found.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Nothing given and no readable `admin.token`.
    #[error(
        "no admin token: pass --token, set TOOLGATE_ADMIN_TOKEN, or point --data-dir at the daemon's data directory ({path}: {reason})"
    )]
    NotFound {
        /// The file tried.
        path: String,
        /// Why it could not be read.
        reason: String,
    },
    /// The file exists but holds no token.
    #[error("{path} is empty; it should hold the daemon's admin token")]
    Empty {
        /// The file.
        path: String,
    },
}

/// The admin token: `flag` (`--token`), else `env` (TOOLGATE_ADMIN_TOKEN),
/// else the first line of `<data_dir>/admin.token` (default data directory
/// `./toolgate-data`, as the daemon's).
///
/// Errors: [`TokenError`] naming the file tried.
pub fn resolve_token(
    flag: Option<Zeroizing<String>>,
    env: Option<Zeroizing<String>>,
    data_dir: Option<&Path>,
) -> Result<Zeroizing<String>, TokenError> {
    for token in [flag, env].into_iter().flatten() {
        if !token.trim().is_empty() {
            return Ok(Zeroizing::new(token.trim().to_owned()));
        }
    }
    let dir = data_dir.unwrap_or(Path::new("./toolgate-data"));
    read_token_file(&dir.join("admin.token"))
}

fn read_token_file(path: &Path) -> Result<Zeroizing<String>, TokenError> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| TokenError::NotFound {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?,
    );
    let token = text.lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return Err(TokenError::Empty {
            path: path.display().to_string(),
        });
    }
    Ok(Zeroizing::new(token.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn z(s: &str) -> Option<Zeroizing<String>> {
        Some(Zeroizing::new(s.to_owned()))
    }

    #[test]
    fn flag_beats_environment_beats_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("admin.token"), "tga_from_file\n").unwrap();
        let args = Args::parse_from([
            "toolgate",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--token",
            "tga_flag",
        ]);
        assert_eq!(args.data_dir.as_deref(), Some(dir.path()));
        assert!(!format!("{args:?}").contains("tga_flag"));
        let data_dir = Some(dir.path());
        let got = |flag, env| {
            resolve_token(flag, env, data_dir)
                .unwrap()
                .as_str()
                .to_owned()
        };
        assert_eq!(got(z("tga_flag"), z("tga_env")), "tga_flag");
        assert_eq!(got(None, z("tga_env")), "tga_env");
        assert_eq!(got(z("  "), None), "tga_from_file");
        assert_eq!(got(None, None), "tga_from_file");
    }

    #[test]
    fn a_missing_token_names_the_file_and_the_options() {
        let dir = tempfile::tempdir().unwrap();
        let message = resolve_token(None, None, Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(message.contains("--token"), "{message}");
        assert!(message.contains("TOOLGATE_ADMIN_TOKEN"), "{message}");
        assert!(message.contains("admin.token"), "{message}");
        std::fs::write(dir.path().join("admin.token"), "\n").unwrap();
        let message = resolve_token(None, None, Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(message.contains("is empty"), "{message}");
    }
}
