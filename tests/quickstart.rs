//! The quickstart of the README, run exactly as written, one shell line at a time.

mod common;

use common::Env;

#[test]
fn quickstart_works_as_written() {
    let env = Env::empty();
    let run = |dir: &str, line: &str| env.sh(dir, line).ok();

    run(".", "git init demo && cd demo");
    run("demo", "mlv init");
    // the data the quickstart assumes
    let demo = env.base.join("demo");
    std::fs::create_dir_all(demo.join("data")).unwrap();
    std::fs::create_dir_all(demo.join("models")).unwrap();
    std::fs::write(demo.join("data/train.csv"), "id,label\n1,cat\n2,dog\n").unwrap();
    std::fs::write(demo.join("data/test.csv"), "id,label\n3,cat\n").unwrap();
    std::fs::write(demo.join("models/model.pt"), b"\x80\x02weights\x00\xff").unwrap();

    run("demo", "mlv add data/ models/model.pt");
    run(
        "demo",
        r#"git add data.mlv models/model.pt.mlv .gitignore && git commit -m "v1 of the data""#,
    );
    // edit data/train.csv
    std::fs::write(demo.join("data/train.csv"), "id,label\n1,cat\n2,dog\n4,bird\n").unwrap();
    let status = run(
        "demo",
        "mlv status        # expect \"data: modified (1 file changed)\"",
    );
    assert_eq!(status.stdout, "data: modified (1 file changed)\n", "{status}");
    run("demo", r#"mlv add data/ && git commit -am "v2""#);
    run(
        "demo",
        "git checkout HEAD~1 && mlv checkout   # v1 again, byte for byte",
    );

    assert_eq!(
        std::fs::read(demo.join("data/train.csv")).unwrap(),
        b"id,label\n1,cat\n2,dog\n"
    );
    assert_eq!(
        std::fs::read(demo.join("data/test.csv")).unwrap(),
        b"id,label\n3,cat\n"
    );
    assert_eq!(
        std::fs::read(demo.join("models/model.pt")).unwrap(),
        b"\x80\x02weights\x00\xff"
    );
    run("demo", "mlv status --exit-code").stderr_has("Data is up to date.");
}
