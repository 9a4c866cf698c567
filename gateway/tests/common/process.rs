//! The real `toolgated` binary as a child process: started, its ready line
//! read, its stdout and stderr collected.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

/// A started daemon process.
pub struct Spawned {
    pub child: Child,
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    /// Its stderr, and its stdout lines, as they arrive.
    pub output: Arc<Mutex<String>>,
    /// The tasks copying stdout and stderr into `output`; they end at the
    /// child's exit, once the pipes are drained.
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Spawned {
    /// Starts `command` (stdin closed, stdout and stderr piped here, killed
    /// when dropped) and waits for its `toolgated ready:` line, whose
    /// `http=` and `grpc=` addresses it keeps. Panics with the output so
    /// far if the process exits first.
    pub async fn start(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let sink = output.clone();
        let stderr_reader = tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = loop {
            let line = lines.next_line().await.unwrap().unwrap_or_else(|| {
                panic!("toolgated exited before ready: {}", output.lock().unwrap())
            });
            output.lock().unwrap().push_str(&line);
            if line.starts_with("toolgated ready:") {
                break line;
            }
        };
        let field = |name: &str| -> SocketAddr {
            ready
                .split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .unwrap()
                .parse()
                .unwrap()
        };
        let sink = output.clone();
        let stdout_reader = tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push_str(&line);
            }
        });
        Self {
            http: field("http"),
            grpc: field("grpc"),
            child,
            output,
            readers: vec![stderr_reader, stdout_reader],
        }
    }

    /// Everything the daemon wrote, once it has exited and both pipes are
    /// drained (on a loaded machine the copy can trail the exit).
    pub async fn logs_after_exit(&mut self) -> String {
        for reader in self.readers.drain(..) {
            reader.await.unwrap();
        }
        self.output.lock().unwrap().clone()
    }
}
