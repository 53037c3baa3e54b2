//! Our initramfs writer read back by tools nobody here wrote: GNU cpio lists and extracts
//! the archive, GNU gzip decompresses it; and the bytes do not depend on the build
//! machine's file times, modes or paths.
#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test, with its message

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use keynet_mkimage::cpio::{Source, Tree};
use keynet_mkimage::initrd::{self, Spec};

fn run(cmd: &mut Command, stdin: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (guest-image/deps.sh installs cpio)"));
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || input.write_all(&data));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn sample(dir: &Path) -> Tree {
    let big = dir.join("big.bin");
    std::fs::write(
        &big,
        (0..100_003u32).map(|i| (i % 251) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    let mut t = Tree::new();
    t.dir("tmp", 0o1777).unwrap();
    t.char_dev("dev/console", 0o600, 5, 1).unwrap();
    t.file("init", 0o755, Source::Bytes(b"#!/bin/true\n".to_vec()))
        .unwrap();
    t.file("lib/modules/x/big.bin", 0o644, Source::Path(big))
        .unwrap();
    t.file("etc/odd", 0o644, Source::Bytes(b"abc".to_vec()))
        .unwrap();
    t
}

#[test]
fn gnu_cpio_lists_what_we_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let mut archive = Vec::new();
    sample(dir.path()).write(&mut archive).unwrap();
    let listing =
        String::from_utf8(run(Command::new("cpio").args(["-it", "--quiet"]), &archive)).unwrap();
    let names: Vec<&str> = listing.lines().collect();
    assert_eq!(
        names,
        [
            "dev",
            "dev/console",
            "etc",
            "etc/odd",
            "init",
            "lib",
            "lib/modules",
            "lib/modules/x",
            "lib/modules/x/big.bin",
            "tmp"
        ]
    );
    // Long listing: permissions, owner 0 0 (numeric), device numbers, sizes, epoch mtime.
    let long = String::from_utf8(run(
        Command::new("cpio").args(["-itv", "--quiet", "--numeric-uid-gid"]),
        &archive,
    ))
    .unwrap();
    let line = |name: &str| {
        long.lines()
            .find(|l| l.ends_with(&format!(" {name}")))
            .unwrap_or_else(|| panic!("{name} not in\n{long}"))
            .to_owned()
    };
    assert!(
        line("init").starts_with("-rwxr-xr-x   1 0        0"),
        "{}",
        line("init")
    );
    assert!(line("tmp").starts_with("drwxrwxrwt"), "{}", line("tmp"));
    assert!(
        line("dev/console").starts_with("crw-------"),
        "{}",
        line("dev/console")
    );
    assert!(
        line("dev/console").contains("5,   1"),
        "{}",
        line("dev/console")
    );
    assert!(
        line("lib/modules/x/big.bin").contains(" 100003 "),
        "{}",
        line("lib/modules/x/big.bin")
    );
    assert!(line("init").contains("Jan  1  1970"), "{}", line("init"));
}

#[test]
fn gnu_cpio_extracts_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut archive = Vec::new();
    sample(dir.path()).write(&mut archive).unwrap();
    let out = dir.path().join("x");
    std::fs::create_dir(&out).unwrap();
    // Everything but the device node (mknod needs privileges).
    run(
        Command::new("cpio")
            .args([
                "-id",
                "--quiet",
                "--no-absolute-filenames",
                "init",
                "etc/*",
                "lib/*",
            ])
            .current_dir(&out),
        &archive,
    );
    assert_eq!(std::fs::read(out.join("init")).unwrap(), b"#!/bin/true\n");
    assert_eq!(std::fs::read(out.join("etc/odd")).unwrap(), b"abc");
    assert_eq!(
        std::fs::read(out.join("lib/modules/x/big.bin")).unwrap(),
        std::fs::read(dir.path().join("big.bin")).unwrap()
    );
    let mode = std::fs::metadata(out.join("init"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
}

/// A fake kernel module tree with a modules.dep as depmod writes it.
fn fake_kernel(root: &Path) -> std::path::PathBuf {
    let m = root.join("lib/modules/6.0-test");
    for f in [
        "kernel/fs/configfs.ko.xz",
        "kernel/virt/tsm.ko.xz",
        "kernel/virt/sev-guest.ko.xz",
    ] {
        std::fs::create_dir_all(m.join(f).parent().unwrap()).unwrap();
        std::fs::write(m.join(f), f.as_bytes()).unwrap();
    }
    std::fs::write(
        m.join("modules.dep"),
        "kernel/fs/configfs.ko.xz:\nkernel/virt/tsm.ko.xz: kernel/fs/configfs.ko.xz\n\
         kernel/virt/sev-guest.ko.xz: kernel/virt/tsm.ko.xz kernel/fs/configfs.ko.xz\n",
    )
    .unwrap();
    std::fs::write(root.join("init"), b"init-binary").unwrap();
    std::fs::write(root.join("keynode"), b"keynode-binary").unwrap();
    m
}

fn spec(root: &Path, modules_dir: std::path::PathBuf) -> Spec {
    Spec {
        init: root.join("init"),
        keynode: root.join("keynode"),
        modules_dir,
        kernel_release: "6.0-test".into(),
        modules: vec!["sev-guest".into()],
    }
}

#[test]
fn initrd_is_gzip_of_a_cpio_with_load_order_and_does_not_depend_on_the_machine() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let ma = fake_kernel(a.path());
    let mb = fake_kernel(b.path());
    // Other times and modes on the build machine must not matter.
    std::fs::set_permissions(
        b.path().join("init"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(b.path().join("keynode"), b"keynode-binary").unwrap();

    let out_a = a.path().join("initrd.img");
    let out_b = b.path().join("initrd.img");
    let built = initrd::build(&spec(a.path(), ma), &out_a).unwrap();
    initrd::build(&spec(b.path(), mb), &out_b).unwrap();
    let bytes = std::fs::read(&out_a).unwrap();
    assert_eq!(
        bytes,
        std::fs::read(&out_b).unwrap(),
        "initrd depends on the build machine"
    );
    assert_eq!(
        built.load_order,
        [
            "kernel/fs/configfs.ko.xz",
            "kernel/virt/tsm.ko.xz",
            "kernel/virt/sev-guest.ko.xz"
        ]
    );
    // gzip header: mtime 0, no name.
    assert_eq!(&bytes[..4], &[0x1f, 0x8b, 8, 0]);
    assert_eq!(&bytes[4..8], &[0, 0, 0, 0]);

    let cpio = run(Command::new("gzip").args(["-dc"]), &bytes);
    assert_eq!(cpio.len() as u64, built.cpio.bytes);
    let dir = tempfile::tempdir().unwrap();
    run(
        Command::new("cpio")
            .args([
                "-id",
                "--quiet",
                "--no-absolute-filenames",
                "etc/*",
                "bin/*",
                "init",
            ])
            .current_dir(dir.path()),
        &cpio,
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("etc/keynet/modules.order")).unwrap(),
        "# Kernel modules, in load order (dependencies first).\n\
         /lib/modules/6.0-test/kernel/fs/configfs.ko.xz\n\
         /lib/modules/6.0-test/kernel/virt/tsm.ko.xz\n\
         /lib/modules/6.0-test/kernel/virt/sev-guest.ko.xz\n"
    );
    assert_eq!(
        std::fs::read(dir.path().join("bin/keynode")).unwrap(),
        b"keynode-binary"
    );
    // The build machine's mode 0600 on init does not leak: init is always 0755.
    let mode = std::fs::metadata(dir.path().join("init"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
}

#[test]
fn missing_module_files_and_unknown_modules_are_named() {
    let a = tempfile::tempdir().unwrap();
    let m = fake_kernel(a.path());
    let mut s = spec(a.path(), m.clone());
    s.modules = vec!["nope".into()];
    let e = initrd::build(&s, &a.path().join("i"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope"), "{e}");
    std::fs::remove_file(m.join("kernel/virt/tsm.ko.xz")).unwrap();
    let e = initrd::build(&spec(a.path(), m), &a.path().join("i"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("tsm.ko.xz"), "{e}");
}
