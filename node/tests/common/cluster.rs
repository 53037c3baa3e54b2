//! A dev network of real `keynode` processes on loopback (simulated platform), for the
//! threshold and conditional-operation tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k256::ecdsa::SigningKey;
use keynet::network::{Network, NetworkFile};

use super::free_ports;

/// A dev network whose nodes run as processes; dropped, it stops them.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub n: usize,
    pub nodes: Vec<Option<Child>>,
}

impl Cluster {
    /// Writes a dev network of `n` nodes (signing waits `wait_ms` for peers) and starts it.
    pub fn start(n: usize, wait_ms: u64) -> Cluster {
        let mut cluster = Cluster::create(n, wait_ms, "");
        for i in 0..n {
            cluster.start_node(i);
        }
        cluster
    }

    /// Writes a dev network of `n` nodes (signing waits `wait_ms` for peers; `limits`, TOML
    /// lines, go in every node's `[limits]`), starting none.
    pub fn create(n: usize, wait_ms: u64, limits: &str) -> Cluster {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let base = free_ports(n as u16);
        let net = keynode::devnet::create(n, dir.path(), base, 2048, None)
            .unwrap_or_else(|e| panic!("{e:#}"));
        for c in &net.configs {
            let text = std::fs::read_to_string(c).unwrap_or_default();
            let text = text
                .replace("[limits]\n", &format!("[limits]\n{limits}\n"))
                .replace(
                    "[threshold]\n",
                    &format!("[threshold]\nsigning_wait_ms = {wait_ms}\n"),
                );
            std::fs::write(c, text).unwrap_or_else(|e| panic!("{e}"));
        }
        // The rules changed: the network file names the new profile.
        keynode::devnet::write_profile(dir.path()).unwrap_or_else(|e| panic!("{e:#}"));
        Cluster {
            dir,
            n,
            nodes: (0..n).map(|_| None).collect(),
        }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn config(&self, i: usize) -> PathBuf {
        self.path(&format!("node-{i}/keynode.toml"))
    }

    pub fn start_node(&mut self, i: usize) {
        self.start_node_with(i, &[]);
    }

    /// Starts node `i` with extra environment variables.
    pub fn start_node_with(&mut self, i: usize, env: &[(&str, &str)]) {
        self.spawn(i, env, Command::new(env!("CARGO_BIN_EXE_keynode")));
    }

    /// Starts node `i` with at most `files` open files (util-linux `prlimit`, which execs
    /// keynode: the child's PID is keynode's).
    pub fn start_node_with_open_files(&mut self, i: usize, files: u64) {
        let mut c = Command::new("prlimit");
        c.arg(format!("--nofile={files}:{files}"))
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_keynode"));
        self.spawn(i, &[], c);
    }

    fn spawn(&mut self, i: usize, env: &[(&str, &str)], mut command: Command) {
        let log = std::fs::File::create(self.path(&format!("node-{i}.log")))
            .unwrap_or_else(|e| panic!("{e}"));
        let child = command
            .args(["run", "--config"])
            .arg(self.config(i))
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        self.nodes[i] = Some(child);
    }

    pub fn stop_node(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Node `i`'s endpoint (as its config and the registry name it).
    pub fn endpoint(&self, i: usize) -> String {
        let text = std::fs::read_to_string(self.config(i)).unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("endpoint = \""))
            .map(|e| e.trim_end_matches('"').to_owned())
            .unwrap_or_default()
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.path(&format!("node-{i}.log"))).unwrap_or_default()
    }

    /// A fresh client (no kept-alive connections).
    pub fn network(&self) -> Network {
        let f = NetworkFile::load(&self.path("network.toml")).unwrap_or_else(|e| panic!("{e}"));
        Network::open(&f).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn user(&self) -> SigningKey {
        key_file(&self.path("user.key"))
    }

    /// Waits until every running node reports a finished DKG.
    pub async fn wait_dkg(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let st = self.network().status().await;
            let running = self.nodes.iter().filter(|c| c.is_some()).count();
            if st.iter().filter(|s| s.error.is_none()).count() == running && running == self.n {
                return;
            }
            if Instant::now() > deadline {
                for i in 0..self.n {
                    eprintln!("--- node {i}\n{}", self.log(i));
                }
                panic!("DKG did not finish: {st:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.n {
            self.stop_node(i);
        }
    }
}

pub fn key_file(p: &Path) -> SigningKey {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    let bytes = hex::decode(text.trim()).unwrap_or_else(|e| panic!("{e}"));
    SigningKey::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}"))
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}
