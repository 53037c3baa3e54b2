//! `keynet encrypt`, `keynet decrypt`, `keynet bls-sign` and `keynet present`: encryption
//! and BLS signatures under access-control conditions.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use keynet::network::{ClientError, present};
use keynet_conditions::Conditions;
use keynet_encryption::{Bls, Header};
use keynet_protocol::request::PresentedSignature;

use crate::commands::{NetworkArgs, fail, json_out, open, read_key, runtime};

/// `keynet encrypt`.
#[derive(Args)]
pub struct EncryptArgs {
    /// The file to encrypt.
    input: PathBuf,
    /// Where to write the encrypted file (written whole, then renamed into place).
    #[arg(long, short, value_name = "FILE")]
    out: PathBuf,
    /// The conditions (a JSON file, or the JSON itself if it starts with `{`).
    #[arg(long, value_name = "FILE|JSON")]
    conditions: String,
    /// The network's BLS public key (96 bytes compressed G2, hex): encrypt offline.
    #[arg(long, value_name = "HEX", conflicts_with = "network")]
    public_key: Option<String>,
    /// Network file: the public key is taken from its nodes (verified, all agreeing).
    #[arg(long, value_name = "FILE")]
    network: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `keynet decrypt`.
#[derive(Args)]
pub struct DecryptArgs {
    #[command(flatten)]
    net: NetworkArgs,
    /// The encrypted file.
    input: PathBuf,
    /// Where to write the plaintext (only once it is complete and matches its hash).
    #[arg(long, short, value_name = "FILE")]
    out: PathBuf,
    /// The requester's wallet key file (hex secret); the conditions are checked for its
    /// address.
    #[arg(long, value_name = "FILE")]
    user_key: PathBuf,
    /// A signature for a `signed_by` condition, as `keynet present` writes it (repeatable).
    #[arg(long, value_name = "FILE")]
    present: Vec<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `keynet bls-sign`.
#[derive(Args)]
pub struct BlsSignArgs {
    #[command(flatten)]
    net: NetworkArgs,
    /// The requester's wallet key file (hex secret).
    #[arg(long, value_name = "FILE")]
    user_key: PathBuf,
    /// The conditions the nodes check before signing (a JSON file, or the JSON itself).
    #[arg(long, value_name = "FILE|JSON")]
    conditions: String,
    /// The message (text, e.g. a JWT's signing input).
    #[arg(
        long,
        conflicts_with = "message_file",
        required_unless_present = "message_file"
    )]
    message: Option<String>,
    /// The message, from a file (bytes).
    #[arg(long, value_name = "FILE")]
    message_file: Option<PathBuf>,
    /// A signature for a `signed_by` condition (repeatable).
    #[arg(long, value_name = "FILE")]
    present: Vec<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `keynet present`.
#[derive(Args)]
pub struct PresentArgs {
    /// The signer's wallet key file (hex secret): the address a `signed_by` condition names.
    #[arg(long, value_name = "FILE")]
    signer_key: PathBuf,
    /// The statement, exactly as the condition names it.
    #[arg(long)]
    statement: String,
}

fn usage(m: String) -> ClientError {
    ClientError::Usage(m)
}

fn conditions(arg: &str) -> Result<Conditions, ClientError> {
    let (text, what) = if arg.trim_start().starts_with('{') {
        (arg.as_bytes().to_vec(), "--conditions".to_owned())
    } else {
        (
            std::fs::read(arg).map_err(|e| usage(format!("--conditions {arg}: {e}")))?,
            format!("--conditions {arg}"),
        )
    };
    Conditions::parse(&text).map_err(|e| usage(format!("{what}: {e}")))
}

fn presented(files: &[PathBuf]) -> Result<Vec<PresentedSignature>, ClientError> {
    files
        .iter()
        .map(|p| {
            let b =
                std::fs::read(p).map_err(|e| usage(format!("--present {}: {e}", p.display())))?;
            serde_json::from_slice(&b).map_err(|e| usage(format!("--present {}: {e}", p.display())))
        })
        .collect()
}

/// A file written beside its destination and renamed into place only when complete; removed
/// if it is not.
struct Staged {
    tmp: PathBuf,
    dest: PathBuf,
    done: bool,
}

impl Staged {
    fn new(dest: &Path) -> Result<(Staged, BufWriter<File>), ClientError> {
        let mut name = dest.file_name().unwrap_or_default().to_os_string();
        name.push(".partial");
        let tmp = dest.with_file_name(name);
        let f = File::create(&tmp).map_err(|e| usage(format!("{}: {e}", tmp.display())))?;
        Ok((
            Staged {
                tmp,
                dest: dest.to_owned(),
                done: false,
            },
            BufWriter::with_capacity(1 << 20, f),
        ))
    }

    fn finish(mut self, w: BufWriter<File>) -> Result<(), ClientError> {
        let io = |e: std::io::Error| ClientError::Failed(format!("{}: {e}", self.dest.display()));
        let f = w.into_inner().map_err(|e| io(e.into_error()))?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&self.tmp, &self.dest).map_err(io)?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// What `keynet encrypt` reports (fields in the order `--json` has always printed them).
#[derive(serde::Serialize)]
struct Encrypted {
    conditions_hash: String,
    identity: String,
    out: String,
    plaintext_bytes: u64,
    plaintext_sha256: String,
    public_key: String,
}

/// What `keynet decrypt --json` reports.
#[derive(serde::Serialize)]
struct Decrypted<'a> {
    bad_shares: &'a [String],
    out: String,
    participants: &'a [String],
    refused: &'a [String],
}

/// `keynet encrypt`.
pub fn encrypt(a: EncryptArgs) -> ExitCode {
    let run = || -> Result<Encrypted, ClientError> {
        let c = conditions(&a.conditions)?;
        let public: blsful::PublicKey<Bls> = match (&a.public_key, &a.network) {
            (Some(h), _) => blsful::PublicKey(
                keynet_threshold::wire::g2_from_hex("--public-key", h.trim_start_matches("0x"))
                    .map_err(|e| usage(e.to_string()))?,
            ),
            (None, Some(n)) => {
                let net = open(&NetworkArgs { network: n.clone() })?;
                runtime()?.block_on(net.bls_public_key())?
            }
            (None, None) => {
                return Err(usage("give --public-key HEX or --network FILE".into()));
            }
        };
        let size = std::fs::metadata(&a.input)
            .map_err(|e| usage(format!("{}: {e}", a.input.display())))?
            .len();
        let (staged, mut w) = Staged::new(&a.out)?;
        let digest = keynet_encryption::encrypt_file(&public, &c, &a.input, &mut w).map_err(
            |e| match e {
                keynet_encryption::EncryptError::Io(e) => {
                    ClientError::Failed(format!("{}: {e}", a.input.display()))
                }
                other => ClientError::Failed(other.to_string()),
            },
        )?;
        staged.finish(w)?;
        Ok(Encrypted {
            out: a.out.display().to_string(),
            plaintext_bytes: size,
            plaintext_sha256: hex::encode(digest),
            conditions_hash: hex::encode(c.hash()),
            identity: hex::encode(keynet_encryption::identity(&c, &digest)),
            public_key: hex::encode(public.0.to_compressed()),
        })
    };
    match run() {
        Ok(v) => {
            if a.json {
                json_out(&v);
            } else {
                println!("encrypted   {} ({} bytes)", v.out, v.plaintext_bytes);
                println!("conditions  {}", v.conditions_hash);
                println!("identity    {}", v.identity);
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `keynet decrypt`.
pub fn decrypt(a: DecryptArgs) -> ExitCode {
    let run = || -> Result<keynet::network::SharesReport, ClientError> {
        let user = read_key(&a.user_key)?;
        let presented = presented(&a.present)?;
        let mut input = BufReader::with_capacity(
            1 << 20,
            File::open(&a.input).map_err(|e| usage(format!("{}: {e}", a.input.display())))?,
        );
        let header =
            Header::read(&mut input).map_err(|e| usage(format!("{}: {e}", a.input.display())))?;
        let net = open(&a.net)?;
        let (staged, mut w) = Staged::new(&a.out)?;
        let report =
            runtime()?.block_on(net.decrypt(&user, &header, &presented, &mut input, &mut w))?;
        staged.finish(w)?;
        Ok(report)
    };
    match run() {
        Ok(c) => {
            for b in &c.bad_shares {
                eprintln!("keynet: warning: left out a bad decryption share from {b}");
            }
            if a.json {
                json_out(&Decrypted {
                    bad_shares: &c.bad_shares,
                    out: a.out.display().to_string(),
                    participants: &c.participants,
                    refused: &c.refused,
                });
            } else {
                println!("decrypted   {}", a.out.display());
                println!("shares from {}", c.participants.join(", "));
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `keynet bls-sign`.
pub fn bls_sign(a: BlsSignArgs) -> ExitCode {
    let run = || -> Result<keynet::network::BlsSigned, ClientError> {
        let user = read_key(&a.user_key)?;
        let c = conditions(&a.conditions)?;
        let message = match (&a.message, &a.message_file) {
            (Some(m), _) => m.as_bytes().to_vec(),
            (None, Some(p)) => std::fs::read(p)
                .map_err(|e| usage(format!("--message-file {}: {e}", p.display())))?,
            (None, None) => return Err(usage("give --message or --message-file".into())),
        };
        let presented = presented(&a.present)?;
        let net = open(&a.net)?;
        runtime()?.block_on(net.bls_sign(&user, &c, &message, &presented))
    };
    match run() {
        Ok(s) => {
            for b in &s.bad_shares {
                eprintln!("keynet: warning: left out a bad signature share from {b}");
            }
            if a.json {
                json_out(&s);
            } else {
                println!("signature   {}", s.signature);
                println!("public key  {}", s.public_key);
                println!("conditions  {}", s.conditions_hash);
                println!("signed by   {}", s.participants.join(", "));
                println!("verified    BLS12-381 (G1 signature, G2 key) over the signed bytes");
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `keynet present`.
pub fn present_cmd(a: PresentArgs) -> ExitCode {
    let run = || -> Result<PresentedSignature, ClientError> {
        let signer = read_key(&a.signer_key)?;
        present(&signer, &a.statement)
    };
    match run() {
        Ok(p) => {
            json_out(&p);
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
