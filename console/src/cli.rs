//! Command-line flags and where the admin token comes from.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// `toolgate`: the admin console of a toolgated daemon.
#[derive(Debug, Clone, clap::Parser)]
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

/// The admin token: `--token`, else `env_token` (TOOLGATE_ADMIN_TOKEN),
/// else the first line of `<data dir>/admin.token`.
///
/// Errors: [`TokenError`] naming the file tried.
pub fn resolve_token(
    args: &Args,
    env_token: Option<String>,
) -> Result<Zeroizing<String>, TokenError> {
    if let Some(token) = args.token.as_ref().filter(|t| !t.trim().is_empty()) {
        return Ok(Zeroizing::new(token.trim().to_owned()));
    }
    if let Some(token) = env_token.filter(|t| !t.trim().is_empty()) {
        return Ok(Zeroizing::new(token.trim().to_owned()));
    }
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("./toolgate-data"));
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

    #[test]
    fn flag_beats_environment_beats_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("admin.token"), "tga_from_file\n").unwrap();
        let dir_arg = dir.path().to_str().unwrap();
        let args = Args::parse_from(["toolgate", "--data-dir", dir_arg, "--token", "tga_flag"]);
        assert_eq!(
            resolve_token(&args, Some("tga_env".into()))
                .unwrap()
                .as_str(),
            "tga_flag"
        );
        let args = Args::parse_from(["toolgate", "--data-dir", dir_arg]);
        assert_eq!(
            resolve_token(&args, Some("tga_env".into()))
                .unwrap()
                .as_str(),
            "tga_env"
        );
        assert_eq!(
            resolve_token(&args, None).unwrap().as_str(),
            "tga_from_file"
        );
    }

    #[test]
    fn a_missing_token_names_the_file_and_the_options() {
        let dir = tempfile::tempdir().unwrap();
        let args = Args::parse_from(["toolgate", "--data-dir", dir.path().to_str().unwrap()]);
        let message = resolve_token(&args, None).unwrap_err().to_string();
        assert!(message.contains("--token"), "{message}");
        assert!(message.contains("TOOLGATE_ADMIN_TOKEN"), "{message}");
        assert!(message.contains("admin.token"), "{message}");
        std::fs::write(dir.path().join("admin.token"), "\n").unwrap();
        let message = resolve_token(&args, None).unwrap_err().to_string();
        assert!(message.contains("is empty"), "{message}");
    }
}
