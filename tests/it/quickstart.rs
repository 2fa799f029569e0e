//! The README's own commands, run as written: the quickstart block extracted from README.md
//! and `install.sh --prefix`.

use std::path::{Path, PathBuf};

use crate::common::Env;

/// The first ```sh block after `heading` in README.md.
fn readme_block(heading: &str) -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let at = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README.md has no {heading:?}"));
    let rest = &readme[at..];
    let start = rest.find("```sh\n").expect("a ```sh block") + "```sh\n".len();
    let len = rest[start..].find("```").expect("the end of the block");
    rest[start..start + len].to_string()
}

/// Every file under `dir`, by path relative to it, with its bytes.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_readme_quickstart_works_as_written() {
    let block = readme_block("## Quickstart");
    assert!(
        !block.contains("..."),
        "the quickstart has a placeholder, not a command:\n{block}"
    );
    // Each line runs in one shell (so `cd` carries over) and must succeed on its own; after
    // the v1 commit, the data is copied aside to compare with what the last checkout restores.
    let mut script = String::from("set -u\n");
    for line in block
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    {
        script.push_str(&format!(
            "{{ {line}\n}} || {{ echo \"README line failed: {}\" >&2; exit 1; }}\n",
            line.replace(['"', '$', '`', '\\'], "_")
        ));
        if line.contains("git commit -m \"v1") {
            script.push_str("mkdir -p \"$V1\" && cp -R data models \"$V1/\"\n");
        }
    }
    let env = Env::empty();
    let v1 = env.base.join("v1");
    let out = env
        .command("sh", &["-c", &script])
        .cwd(&env.base)
        .env("V1", v1.to_str().unwrap())
        .run();
    assert_eq!(out.code, Some(0), "the quickstart failed:\n{out}");
    assert!(
        out.stdout.contains("data: modified (1 file changed)\n"),
        "`mlv status` did not say what the README says:\n{out}"
    );
    let demo = env.base.join("demo");
    assert!(!tree(&v1).is_empty(), "the v1 copy was not made:\n{out}");
    for d in ["data", "models"] {
        assert_eq!(
            tree(&demo.join(d)),
            tree(&v1.join(d)),
            "{d}/ is not v1 again:\n{out}"
        );
    }
    assert!(tree(&demo.join("data"))
        .iter()
        .all(|(_, bytes)| !bytes.windows(4).any(|w| w == b"bird")));
    env.command("mlv", &["status", "--exit-code"])
        .cwd(&demo)
        .run()
        .ok()
        .stderr_has("Data is up to date.");
}

#[test]
fn install_sh_prefix_installs_into_prefix_bin() {
    let env = Env::empty();
    // a stand-in cargo: builds nothing, reports a target directory holding the built mlv
    let target = env.base.join("target");
    std::fs::create_dir_all(target.join("release")).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_mlv"), target.join("release/mlv")).unwrap();
    let fake = env.base.join("fakebin");
    std::fs::create_dir_all(&fake).unwrap();
    std::fs::write(
        fake.join("cargo"),
        format!(
            "#!/bin/sh\ncase \"$1\" in metadata) echo '{{\"target_directory\": \"{}\"}}' ;; esac\n",
            target.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(fake.join("cargo"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let install = Path::new(env!("CARGO_MANIFEST_DIR")).join("install.sh");
    let prefix = env.base.join("prefix");
    let path = format!(
        "{}:{}",
        fake.display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
    );
    let out = env
        .command(
            "bash",
            &[install.to_str().unwrap(), "--prefix", prefix.to_str().unwrap()],
        )
        .env("PATH", &path)
        .cwd(&env.base)
        .run()
        .ok();
    assert!(prefix.join("bin/mlv").is_file(), "{out}");
    assert!(!prefix.join("mlv").exists(), "{out}");
    out.stderr_has(&format!("to {}/bin/mlv", prefix.display()));
    env.command("bash", &[install.to_str().unwrap(), "--help"])
        .cwd(&env.base)
        .run()
        .ok()
        .stdout_has("--prefix DIR      # into DIR/bin");
}
