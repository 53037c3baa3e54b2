//! Offline certificate directories in snpguest's layout, and PEM/DER decoding of
//! certificate and CRL files.
//!
//! A directory may hold `ark`, `ask`, `asvk`, `vcek` and `vlek` certificates, each as
//! `<name>.pem` or `<name>.der` (the content decides the encoding, not the extension). A file
//! may carry the certificates above it after its own, as KDS serves them: `ask.pem` may be
//! ASK then ARK (a KDS `cert_chain`), `vcek.pem` may be VCEK, ASK, ARK. Such trailing
//! certificates fill in the missing files and must agree with the files present.
//!
//! PEM decoding is strict about encapsulation boundaries (the label must be the expected
//! one, BEGIN and END must match, no headers) and tolerant about what surrounds them: CRLF
//! line endings, and comment or explanatory lines (`# SEV-VCEK`) outside blocks.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::kds::KdsError;

/// The PEM label of X.509 certificates.
pub const CERTIFICATE: &str = "CERTIFICATE";

/// The PEM label of X.509 CRLs.
pub const X509_CRL: &str = "X509 CRL";

/// The certificates of an offline directory, as DER. Any of them may be absent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertDir {
    /// AMD root key certificate (self-signed).
    pub ark: Option<Vec<u8>>,
    /// AMD SEV signing key certificate (signs VCEKs).
    pub ask: Option<Vec<u8>>,
    /// AMD SEV VLEK signing key certificate (signs VLEKs).
    pub asvk: Option<Vec<u8>>,
    /// Versioned chip endorsement key certificate.
    pub vcek: Option<Vec<u8>>,
    /// Versioned loaded endorsement key certificate.
    pub vlek: Option<Vec<u8>>,
}

impl CertDir {
    /// Reads a certificate directory. Fails if a file is unreadable or malformed, if files
    /// disagree about a certificate, if both `<name>.pem` and `<name>.der` exist (which one
    /// is meant would be a guess), or if the directory holds none of the expected files.
    pub fn load(dir: impl AsRef<Path>) -> Result<CertDir, KdsError> {
        let dir = dir.as_ref();
        let meta = fs::metadata(dir).map_err(|source| KdsError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(KdsError::Io {
                path: dir.to_path_buf(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a directory"),
            });
        }

        let mut out = CertDir::default();
        // Which file each certificate came from, for conflict messages.
        let mut origin: [Option<String>; Role::ALL.len()] = Default::default();
        // Dedicated files first, so that certificates trailing in other files are checked
        // against them rather than the other way round.
        let mut trailing: Vec<(PathBuf, Role, Vec<Vec<u8>>)> = Vec::new();
        for role in Role::ALL {
            let Some(RoleFile { path, certs }) = read_role_file(dir, role)? else {
                continue;
            };
            let max = role.chain().len();
            if certs.len() > max {
                return Err(KdsError::TooManyCertificates {
                    file: path,
                    found: certs.len(),
                    max,
                });
            }
            let mut certs = certs.into_iter();
            let Some(own) = certs.next() else {
                continue;
            };
            *out.slot(role) = Some(own);
            origin[role as usize] = Some(file_name(&path));
            trailing.push((path, role, certs.collect()));
        }
        if trailing.is_empty() {
            return Err(KdsError::MissingFile {
                dir: dir.to_path_buf(),
                names: Role::ALL
                    .iter()
                    .flat_map(|r| [format!("{}.pem", r.stem()), format!("{}.der", r.stem())])
                    .collect(),
            });
        }

        for (path, role, certs) in trailing {
            let here = file_name(&path);
            for (&issuer, der) in role.chain()[1..].iter().zip(certs) {
                let slot = out.slot(issuer);
                match slot {
                    None => {
                        *slot = Some(der);
                        origin[issuer as usize] =
                            Some(format!("{here} (after the {})", role.name()));
                    }
                    Some(existing) if *existing == der => {}
                    Some(_) => {
                        return Err(KdsError::Conflict {
                            dir: dir.to_path_buf(),
                            cert: issuer.name(),
                            detail: format!(
                                "the {} after the {} in {here} differs from the one in {}",
                                issuer.name(),
                                role.name(),
                                origin[issuer as usize].as_deref().unwrap_or("another file"),
                            ),
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    fn slot(&mut self, role: Role) -> &mut Option<Vec<u8>> {
        match role {
            Role::Ark => &mut self.ark,
            Role::Ask => &mut self.ask,
            Role::Asvk => &mut self.asvk,
            Role::Vcek => &mut self.vcek,
            Role::Vlek => &mut self.vlek,
        }
    }
}

/// All DER certificates in a file's bytes, in file order: one or more PEM `CERTIFICATE`
/// blocks, or one or more concatenated DER certificates. At least one is required.
pub fn pem_or_der_certs(bytes: &[u8]) -> Result<Vec<Vec<u8>>, KdsError> {
    pem_or_der(bytes, CERTIFICATE, Path::new("(in-memory input)"))
}

/// All DER objects in a file's bytes, in file order: PEM blocks labelled `label` (e.g.
/// [`CERTIFICATE`] or [`X509_CRL`]), or concatenated DER SEQUENCEs. The encoding is told by
/// content: DER starts with a SEQUENCE tag, PEM has a `-----BEGIN` line (a text file that
/// happens to start with `0`, the SEQUENCE tag, is still read as PEM). `file` only names the
/// input in errors.
pub fn pem_or_der(bytes: &[u8], label: &str, file: &Path) -> Result<Vec<Vec<u8>>, KdsError> {
    let looks_pem = bytes.windows(11).any(|w| w == b"-----BEGIN ");
    if bytes.first() == Some(&0x30) {
        match der_sequences(bytes, file) {
            Ok(der) => return Ok(der),
            Err(e) if !looks_pem => return Err(e),
            Err(_) => {}
        }
    }
    if !looks_pem {
        return Err(KdsError::NotPemOrDer {
            file: file.to_path_buf(),
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| KdsError::Pem {
        file: file.to_path_buf(),
        line: 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count(),
        reason: "not UTF-8 text".to_owned(),
    })?;
    pem_blocks(text, label, file)
}

/// Decodes every PEM block labelled `label` in `text`. Lines outside blocks that do not
/// start with `-----` are ignored (comments, explanatory text, as RFC 7468 allows); any other
/// boundary, a mismatched END, a header line, bad base64 or an unterminated block is an error,
/// as is finding no block at all.
pub fn pem_blocks(text: &str, label: &str, file: &Path) -> Result<Vec<Vec<u8>>, KdsError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let err = |line: usize, reason: String| KdsError::Pem {
        file: file.to_path_buf(),
        line,
        reason,
    };

    let mut out = Vec::new();
    // The open block: its BEGIN line number and base64 so far.
    let mut open: Option<(usize, String)> = None;
    for (idx, raw) in text.split('\n').enumerate() {
        let lineno = idx + 1;
        let line = raw.trim_end_matches(['\r', ' ', '\t']);
        match open.as_mut() {
            None => {
                if line == begin {
                    open = Some((lineno, String::new()));
                } else if line.starts_with("-----") {
                    return Err(err(
                        lineno,
                        format!("unexpected '{line}' (expected '{begin}')"),
                    ));
                }
            }
            Some((start, b64)) => {
                if line == end {
                    let der = STANDARD.decode(b64.as_bytes()).map_err(|e| {
                        err(
                            *start,
                            format!("bad base64 in the block starting here: {e}"),
                        )
                    })?;
                    if der.is_empty() {
                        return Err(err(*start, "empty block".to_owned()));
                    }
                    out.push(der);
                    open = None;
                } else if line.starts_with("-----") {
                    return Err(err(
                        lineno,
                        format!("unexpected '{line}' inside a block (expected '{end}')"),
                    ));
                } else if line.contains(':') {
                    return Err(err(lineno, "PEM headers are not supported".to_owned()));
                } else {
                    b64.push_str(line.trim_start());
                }
            }
        }
    }
    if let Some((start, _)) = open {
        return Err(err(start, format!("block has no '{end}' line")));
    }
    if out.is_empty() {
        return Err(err(1, format!("no '{begin}' block")));
    }
    Ok(out)
}

/// The length of the DER SEQUENCE at the start of `bytes` (header included), if it is one
/// with a definite length that fits. Used to split concatenated DER and to sanity-check
/// KDS responses.
pub(crate) fn der_sequence_len(bytes: &[u8]) -> Result<usize, &'static str> {
    if bytes.first() != Some(&0x30) {
        return Err("does not start with a DER SEQUENCE");
    }
    let first = *bytes.get(1).ok_or("truncated length")?;
    let (len, header) = match first {
        0x00..=0x7f => (usize::from(first), 2),
        0x80 => return Err("indefinite length (BER, not DER)"),
        0x81..=0x84 => {
            let n = usize::from(first & 0x7f);
            let digits = bytes.get(2..2 + n).ok_or("truncated length")?;
            let len = digits
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (len, 2 + n)
        }
        _ => return Err("length too large"),
    };
    let total = header + len;
    if total > bytes.len() {
        return Err("truncated: the SEQUENCE is longer than the data");
    }
    Ok(total)
}

/// Splits concatenated DER SEQUENCEs; trailing bytes that are not one are an error.
fn der_sequences(bytes: &[u8], file: &Path) -> Result<Vec<Vec<u8>>, KdsError> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let offset = bytes.len() - rest.len();
        let len = der_sequence_len(rest).map_err(|reason| KdsError::Der {
            file: file.to_path_buf(),
            reason: format!("at byte {offset}: {reason}"),
        })?;
        let (one, tail) = rest.split_at(len);
        out.push(one.to_vec());
        rest = tail;
    }
    Ok(out)
}

/// The certificates an offline directory may hold, dedicated files first in load order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Ark,
    Ask,
    Asvk,
    Vcek,
    Vlek,
}

impl Role {
    const ALL: [Role; 5] = [Role::Ark, Role::Ask, Role::Asvk, Role::Vcek, Role::Vlek];

    fn stem(self) -> &'static str {
        match self {
            Role::Ark => "ark",
            Role::Ask => "ask",
            Role::Asvk => "asvk",
            Role::Vcek => "vcek",
            Role::Vlek => "vlek",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Role::Ark => "ARK",
            Role::Ask => "ASK",
            Role::Asvk => "ASVK",
            Role::Vcek => "VCEK",
            Role::Vlek => "VLEK",
        }
    }

    /// The certificate and its issuers up to the ARK: the order of certificates a file for
    /// this role may hold.
    fn chain(self) -> &'static [Role] {
        match self {
            Role::Ark => &[Role::Ark],
            Role::Ask => &[Role::Ask, Role::Ark],
            Role::Asvk => &[Role::Asvk, Role::Ark],
            Role::Vcek => &[Role::Vcek, Role::Ask, Role::Ark],
            Role::Vlek => &[Role::Vlek, Role::Asvk, Role::Ark],
        }
    }
}

/// A certificate file of a directory and the certificates in it (at least one).
struct RoleFile {
    path: PathBuf,
    certs: Vec<Vec<u8>>,
}

/// Reads `<stem>.pem` or `<stem>.der` if exactly one exists; `None` if neither does.
fn read_role_file(dir: &Path, role: Role) -> Result<Option<RoleFile>, KdsError> {
    let pem = dir.join(format!("{}.pem", role.stem()));
    let der = dir.join(format!("{}.der", role.stem()));
    let (path, bytes) = match (read_optional(&pem)?, read_optional(&der)?) {
        (None, None) => return Ok(None),
        (Some(bytes), None) => (pem, bytes),
        (None, Some(bytes)) => (der, bytes),
        (Some(_), Some(_)) => {
            return Err(KdsError::Conflict {
                dir: dir.to_path_buf(),
                cert: role.name(),
                detail: format!("both {0}.pem and {0}.der exist; keep one", role.stem()),
            });
        }
    };
    let certs = pem_or_der(&bytes, CERTIFICATE, &path)?;
    Ok(Some(RoleFile { path, certs }))
}

/// The file's bytes, or `None` if it does not exist.
fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, KdsError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(KdsError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
