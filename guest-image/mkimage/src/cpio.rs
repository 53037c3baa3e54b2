//! The newc ("070701") cpio format the kernel unpacks an initramfs from, written
//! reproducibly: entries sorted by path, inode numbers assigned in that order, mtime 0,
//! owner 0:0, one link per file. Nothing of the build machine (time, user, inode, path)
//! reaches the archive.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;

use crate::error::{Error, Result};

/// newc magic.
const MAGIC: &[u8; 6] = b"070701";
/// File type bits of `st_mode`.
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFCHR: u32 = 0o020_000;
/// Name of the end-of-archive entry.
const TRAILER: &str = "TRAILER!!!";

/// Where a regular file's bytes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A file on the build machine, streamed (its size is checked before and after).
    Path(PathBuf),
    /// Bytes in memory.
    Bytes(Vec<u8>),
}

/// One archive entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A directory.
    Dir,
    /// A regular file.
    File(Source),
    /// A character device.
    CharDev {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
}

#[derive(Clone, Debug)]
struct Entry {
    node: Node,
    /// Permission bits only (`0o7777` at most).
    perm: u32,
}

/// What was written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Entries, without the trailer.
    pub entries: usize,
    /// Bytes of the archive.
    pub bytes: u64,
}

/// A file tree to archive. Paths are relative (`bin/keynode`); parents are added as
/// directories (mode 0755) when missing.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    entries: BTreeMap<String, Entry>,
}

/// Checks an archive path: relative, no empty, `.` or `..` components, no NUL.
fn check_path(path: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::ArchivePath {
            path: path.to_owned(),
            reason,
        })
    };
    if path.is_empty() {
        return bad("empty");
    }
    if path.starts_with('/') {
        return bad("must be relative");
    }
    if path.contains('\0') {
        return bad("contains NUL");
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return bad("has an empty, '.' or '..' component");
    }
    if path == TRAILER {
        return bad("is the trailer's name");
    }
    Ok(())
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a directory.
    pub fn dir(&mut self, path: &str, perm: u32) -> Result<()> {
        self.insert(path, Node::Dir, perm)
    }

    /// Adds a regular file.
    pub fn file(&mut self, path: &str, perm: u32, source: Source) -> Result<()> {
        self.insert(path, Node::File(source), perm)
    }

    /// Adds a character device node.
    pub fn char_dev(&mut self, path: &str, perm: u32, major: u32, minor: u32) -> Result<()> {
        self.insert(path, Node::CharDev { major, minor }, perm)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if the tree is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn insert(&mut self, path: &str, node: Node, perm: u32) -> Result<()> {
        check_path(path)?;
        if perm > 0o7777 {
            return Err(Error::ArchivePath {
                path: path.to_owned(),
                reason: "mode has bits beyond 0o7777",
            });
        }
        // Parents first: every component before the last must be (or become) a directory.
        let mut parent = String::new();
        let comps: Vec<&str> = path.split('/').collect();
        for c in comps.iter().take(comps.len().saturating_sub(1)) {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(c);
            match self.entries.get(&parent) {
                Some(Entry {
                    node: Node::Dir, ..
                }) => {}
                Some(_) => {
                    return Err(Error::ArchivePath {
                        path: path.to_owned(),
                        reason: "a parent is not a directory",
                    });
                }
                None => {
                    self.entries.insert(
                        parent.clone(),
                        Entry {
                            node: Node::Dir,
                            perm: 0o755,
                        },
                    );
                }
            }
        }
        match (self.entries.get(path), &node) {
            // Declaring an implicit directory explicitly sets its mode.
            (
                Some(Entry {
                    node: Node::Dir, ..
                }),
                Node::Dir,
            )
            | (None, _) => {
                self.entries.insert(path.to_owned(), Entry { node, perm });
                Ok(())
            }
            (Some(_), _) => Err(Error::ArchivePath {
                path: path.to_owned(),
                reason: "added twice",
            }),
        }
    }

    /// Writes the archive. Files given by path are streamed, never loaded whole.
    pub fn write<W: Write>(&self, out: W) -> Result<Stats> {
        let mut w = Counting { inner: out, n: 0 };
        let io = |e| Error::io("<archive>", e);
        let mut ino: u32 = 0;
        for (path, e) in &self.entries {
            ino += 1;
            match &e.node {
                Node::Dir => {
                    header(&mut w, path, ino, S_IFDIR | e.perm, 2, 0, (0, 0))?;
                }
                Node::CharDev { major, minor } => {
                    header(&mut w, path, ino, S_IFCHR | e.perm, 1, 0, (*major, *minor))?;
                }
                Node::File(Source::Bytes(b)) => {
                    header(
                        &mut w,
                        path,
                        ino,
                        S_IFREG | e.perm,
                        1,
                        b.len() as u64,
                        (0, 0),
                    )?;
                    w.write_all(b).map_err(io)?;
                    pad(&mut w)?;
                }
                Node::File(Source::Path(p)) => {
                    let f = std::fs::File::open(p).map_err(|e| Error::io(p, e))?;
                    let size = f.metadata().map_err(|e| Error::io(p, e))?.len();
                    header(&mut w, path, ino, S_IFREG | e.perm, 1, size, (0, 0))?;
                    // One byte more than announced would show a file that grew.
                    let copied = std::io::copy(&mut f.take(size + 1), &mut w)
                        .map_err(|e| Error::io(p, e))?;
                    if copied != size {
                        return Err(Error::SizeChanged {
                            path: p.clone(),
                            expected: size,
                            actual: copied,
                        });
                    }
                    pad(&mut w)?;
                }
            }
        }
        header(&mut w, TRAILER, 0, 0, 1, 0, (0, 0))?;
        w.flush().map_err(io)?;
        Ok(Stats {
            entries: self.entries.len(),
            bytes: w.n,
        })
    }
}

/// A writer that counts bytes, for padding to 4-byte boundaries.
struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn pad<W: Write>(w: &mut Counting<W>) -> Result<()> {
    let k = ((4 - w.n % 4) % 4) as usize;
    w.write_all(&[0; 3][..k])
        .map_err(|e| Error::io("<archive>", e))
}

fn u32_field(path: &str, field: &'static str, value: u64) -> Result<u32> {
    u32::try_from(value).map_err(|_| Error::TooLarge {
        path: path.to_owned(),
        field,
        value,
    })
}

/// Writes one newc header and the padded name.
fn header<W: Write>(
    w: &mut Counting<W>,
    name: &str,
    ino: u32,
    mode: u32,
    nlink: u32,
    size: u64,
    rdev: (u32, u32),
) -> Result<()> {
    let size = u32_field(name, "filesize", size)?;
    let namesize = u32_field(name, "namesize", name.len() as u64 + 1)?;
    // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
    let fields = [
        ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev.0, rdev.1, namesize, 0,
    ];
    let mut h = Vec::with_capacity(110 + name.len() + 4);
    h.extend_from_slice(MAGIC);
    for f in fields {
        h.extend_from_slice(format!("{f:08X}").as_bytes());
    }
    h.extend_from_slice(name.as_bytes());
    h.push(0);
    w.write_all(&h).map_err(|e| Error::io("<archive>", e))?;
    pad(w)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_paths() {
        let mut t = Tree::new();
        for p in [
            "",
            "/abs",
            "a//b",
            "a/./b",
            "../x",
            "a/..",
            "x\0y",
            "TRAILER!!!",
        ] {
            assert!(t.dir(p, 0o755).is_err(), "{p:?} accepted");
        }
        assert!(t.dir("ok", 0o10000).is_err(), "mode beyond 0o7777 accepted");
    }

    #[test]
    fn parents_are_created_and_conflicts_refused() {
        let mut t = Tree::new();
        t.file("a/b/c", 0o644, Source::Bytes(b"x".to_vec()))
            .unwrap();
        assert_eq!(t.len(), 3);
        // An explicit directory over an implicit one sets its mode.
        t.dir("a", 0o700).unwrap();
        assert!(t.file("a/b/c", 0o644, Source::Bytes(vec![])).is_err());
        assert!(t.file("a/b/c/d", 0o644, Source::Bytes(vec![])).is_err());
        assert!(t.dir("a/b/c", 0o755).is_err());
    }

    #[test]
    fn layout_is_newc_and_padded() {
        let mut t = Tree::new();
        t.file("x", 0o644, Source::Bytes(b"hello".to_vec()))
            .unwrap();
        let mut out = Vec::new();
        let st = t.write(&mut out).unwrap();
        assert_eq!(st.entries, 1);
        assert_eq!(st.bytes as usize, out.len());
        assert_eq!(out.len() % 4, 0);
        assert_eq!(&out[..6], b"070701");
        // ino 1, mode 0100644, uid 0, gid 0, nlink 1, mtime 0, size 5
        let want = [
            "00000001", "000081A4", "00000000", "00000000", "00000001", "00000000", "00000005",
        ]
        .concat();
        assert_eq!(&out[6..62], want.as_bytes());
        // header 110 + "x\0" = 112 (aligned), data "hello" + 3 pad
        assert_eq!(&out[112..117], b"hello");
        assert_eq!(&out[117..120], &[0, 0, 0]);
        assert!(out.windows(10).any(|w| w == b"TRAILER!!!"));
    }
}
