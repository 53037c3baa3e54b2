//! The initramfs layout and its deterministic compression.
//!
//! ```text
//! /init                         keynet-init (PID 1)
//! /bin/keynode                  the node, statically linked
//! /dev/console, /dev/null       needed before init mounts devtmpfs
//! /etc/keynet/modules.order     module files in load order (absolute paths)
//! /lib/modules/<release>/...    the module files, as shipped (.ko.xz)
//! /proc /sys /run /tmp          mount points
//! ```

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};

use crate::cpio::{Source, Stats, Tree};
use crate::error::{Error, Result};
use crate::modules::ModulesDep;

/// Where the parts come from.
#[derive(Clone, Debug)]
pub struct Spec {
    /// The init binary.
    pub init: PathBuf,
    /// The keynode binary.
    pub keynode: PathBuf,
    /// `lib/modules/<release>` of the extracted kernel package, with `modules.dep`.
    pub modules_dir: PathBuf,
    /// The kernel release (`uname -r`), e.g. `6.12.117+deb12-cloud-amd64`.
    pub kernel_release: String,
    /// Module names to load, in the wanted order.
    pub modules: Vec<String>,
}

/// What was built.
#[derive(Clone, Debug)]
pub struct Built {
    /// The uncompressed archive.
    pub cpio: Stats,
    /// Bytes of the compressed file.
    pub compressed: u64,
    /// Module files, in load order (relative to `lib/modules/<release>`).
    pub load_order: Vec<String>,
}

/// The file init reads its module load order from.
pub const MODULES_ORDER: &str = "etc/keynet/modules.order";

/// The tree of the initramfs.
pub fn tree(spec: &Spec) -> Result<(Tree, Vec<String>)> {
    if spec.kernel_release.is_empty()
        || spec.kernel_release.contains('/')
        || spec.kernel_release.starts_with('.')
    {
        return Err(Error::ArchivePath {
            path: spec.kernel_release.clone(),
            reason: "kernel release must be one path component",
        });
    }
    let dep_path = spec.modules_dir.join("modules.dep");
    let dep_text = std::fs::read_to_string(&dep_path).map_err(|e| Error::io(&dep_path, e))?;
    let order = ModulesDep::parse(&dep_text)?.load_order(&spec.modules)?;

    let mut t = Tree::new();
    for d in ["proc", "sys", "run", "dev", "bin", "etc"] {
        t.dir(d, 0o755)?;
    }
    t.dir("tmp", 0o1777)?;
    t.char_dev("dev/console", 0o600, 5, 1)?;
    t.char_dev("dev/null", 0o666, 1, 3)?;
    t.file("init", 0o755, Source::Path(spec.init.clone()))?;
    t.file("bin/keynode", 0o755, Source::Path(spec.keynode.clone()))?;
    let base = format!("lib/modules/{}", spec.kernel_release);
    let mut list = String::from("# Kernel modules, in load order (dependencies first).\n");
    for rel in &order {
        let src = spec.modules_dir.join(rel);
        if !src.is_file() {
            return Err(Error::io(
                &src,
                std::io::Error::new(std::io::ErrorKind::NotFound, "module file missing"),
            ));
        }
        t.file(&format!("{base}/{rel}"), 0o644, Source::Path(src))?;
        list.push_str(&format!("/{base}/{rel}\n"));
    }
    t.file(MODULES_ORDER, 0o644, Source::Bytes(list.into_bytes()))?;
    Ok((t, order))
}

/// Builds the compressed initramfs at `out` (written beside it, then renamed).
pub fn build(spec: &Spec, out: &Path) -> Result<Built> {
    let (tree, load_order) = tree(spec)?;
    let tmp = out.with_extension("part");
    let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    // gzip header: mtime 0, no file name, no comment; level 9. The kernel's RD_GZIP is
    // built in, so this needs no module.
    let gz = GzBuilder::new()
        .mtime(0)
        .operating_system(3)
        .write(BufWriter::new(file), Compression::best());
    let mut gz = gz;
    let cpio = tree.write(&mut gz)?;
    let buf = gz.finish().map_err(|e| Error::io(&tmp, e))?;
    let file = buf
        .into_inner()
        .map_err(|e| Error::io(&tmp, e.into_error()))?;
    file.sync_all().map_err(|e| Error::io(&tmp, e))?;
    let compressed = file.metadata().map_err(|e| Error::io(&tmp, e))?.len();
    std::fs::rename(&tmp, out).map_err(|e| Error::io(out, e))?;
    Ok(Built {
        cpio,
        compressed,
        load_order,
    })
}

/// Writes `data` to `path` atomically (beside it, then renamed).
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("part");
    let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(data).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
