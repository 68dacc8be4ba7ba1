//! `berth score`: a registered version scores a data set — through an endpoint, an alias or a
//! pinned version —, writing each row's id, outputs, version and a prediction id; shards of a
//! folder split it without overlap; mistakes are named with exit code 2.

mod common;

use common::{TestStore, fixtures, path, read_csv};

#[test]
fn a_version_scores_files_folders_and_shards() {
    let store = TestStore::new().with_churn();
    let (dir, cli, cli_ok) = (
        &store.dir,
        |a: &[&str]| store.run(a),
        |a: &[&str]| store.ok(a),
    );
    cli_ok(&["alias", "set", "churn@champion", "1"]);
    cli_ok(&["endpoints", "set", "churn-api", "churn@champion"]);

    let eval = fixtures().join("data/eval_features.csv");
    let (_, expected) = read_csv(&fixtures().join("models/xgb_classifier.json.expected.csv"));
    for target in ["churn-api", "churn@champion", "churn/1"] {
        let out_file = dir.path().join("scored.csv");
        let out = cli(&[
            "score",
            target,
            "--input",
            path(&eval),
            "--output",
            path(&out_file),
        ]);
        assert!(
            out.status.success(),
            "{target}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (header, rows) = read_csv(&out_file);
        assert_eq!(
            header,
            ["id", "label", "p_0", "p_1", "version", "prediction_id"]
        );
        assert_eq!(rows.len(), expected.len());
        for (r, (row, want)) in rows.iter().zip(&expected).enumerate() {
            assert_eq!(row[0], r.to_string());
            assert_eq!(row[4], "churn/1");
            let (got, want): (f64, f64) =
                (row[3].parse().expect("p1"), want[2].parse().expect("p1"));
            assert!(
                (got - want).abs() < 1e-6,
                "{target} row {r}: {got} vs {want}"
            );
        }
    }

    // A folder of parts, scored in two shards: every row once.
    let parts = dir.path().join("parts");
    std::fs::create_dir(&parts).expect("dir");
    let text = std::fs::read_to_string(&eval).expect("eval");
    let mut lines = text.lines();
    let header = lines.next().expect("header");
    let body: Vec<&str> = lines.collect();
    for (i, chunk) in body.chunks(300).enumerate() {
        std::fs::write(
            parts.join(format!("part-{i}.csv")),
            format!("{header}\n{}\n", chunk.join("\n")),
        )
        .expect("part");
    }
    let mut seen = Vec::new();
    for shard in ["0/2", "1/2"] {
        let out_file = dir.path().join(format!("shard-{}.csv", &shard[..1]));
        cli_ok(&[
            "score",
            "churn/1",
            "--input",
            path(&parts),
            "--shard",
            shard,
            "--output",
            path(&out_file),
        ]);
        let (_, rows) = read_csv(&out_file);
        assert!(
            !rows.is_empty() && rows.len() < body.len(),
            "a shard is a share"
        );
        seen.extend(rows.into_iter().map(|r| r[0].parse::<usize>().expect("id")));
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..body.len()).collect::<Vec<_>>());
    // A pattern picks files by name.
    let pattern = parts.join("part-1*.csv");
    let stdout = cli_ok(&["score", "churn/1", "--input", path(&pattern)]);
    assert_eq!(stdout.lines().count(), 301);

    // Bad rows: named by row and column, and either the end of the run or skipped to a file.
    let bad = dir.path().join("bad.csv");
    let mut lines: Vec<String> = text.lines().take(11).map(str::to_string).collect();
    for (line, column) in [(3, 1), (7, 5)] {
        let mut cells: Vec<&str> = lines[line].split(',').collect();
        cells[column] = if column == 1 { "abc" } else { "?" };
        lines[line] = cells.join(",");
    }
    std::fs::write(&bad, lines.join("\n") + "\n").expect("bad rows");
    let names: Vec<&str> = header.split(',').collect();
    let refused = cli(&[
        "score",
        "churn/1",
        "--input",
        path(&bad),
        "--chunk-rows",
        "0",
    ]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(
        err.contains("chunk_rows: expected at least 1, got 0"),
        "{err}"
    );
    let failed_output = dir.path().join("failed.csv");
    let out = cli(&[
        "score",
        "churn/1",
        "--input",
        path(&bad),
        "--output",
        path(&failed_output),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("row 3") && err.contains(names[1]), "{err}");
    // A failed run leaves no output behind, finished-looking or partial.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("failed.csv"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let scored = dir.path().join("good.csv");
    cli_ok(&[
        "score",
        "churn/1",
        "--input",
        path(&bad),
        "--on-error",
        "skip",
        "--output",
        path(&scored),
    ]);
    let (_, rows) = read_csv(&scored);
    let ids: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(ids, ["0", "1", "3", "4", "5", "7", "8", "9"]);
    let rejects = dir.path().join("good.csv.rejects.csv");
    let (rheader, rejected) = read_csv(&rejects);
    assert_eq!(rheader, ["file", "row", "column", "expected", "got"]);
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert_eq!(
        (rejected[0][1].as_str(), rejected[0][2].as_str()),
        ("3", names[1])
    );
    assert_eq!(
        (rejected[1][1].as_str(), rejected[1][2].as_str()),
        ("7", names[5])
    );

    for (args, says) in [
        (
            vec!["score", "nope", "--input", path(&eval)],
            "no endpoint named 'nope'",
        ),
        (vec!["score", "churn/9", "--input", path(&eval)], "churn/9"),
        (
            vec!["score", "churn/1", "--input", "/no/such/file.csv"],
            "/no/such/file.csv",
        ),
        (
            vec!["score", "churn/1", "--input", path(&eval), "--shard", "2/2"],
            "i/N",
        ),
    ] {
        let out = cli(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?} should say {says:?}: {err}");
    }
}

#[test]
fn inputs_and_outputs_at_s3_urls() {
    use object_store::ObjectStoreExt;
    use object_store::path::Path as Key;
    let Some(bucket) = berth_store::testing::s3_test_bucket() else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let s3 = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(&bucket)
        .build()
        .expect("S3 client");
    let prefix = format!("score-{}", std::process::id());
    let store = TestStore::new().with_churn();
    let (dir, cli, cli_ok) = (
        &store.dir,
        |a: &[&str]| store.run(a),
        |a: &[&str]| store.ok(a),
    );

    // Three parts and a file that is not data, in one S3 "folder".
    let text = std::fs::read_to_string(fixtures().join("data/eval_features.csv")).expect("eval");
    let mut lines = text.lines();
    let header = lines.next().expect("header");
    let body: Vec<&str> = lines.collect();
    runtime.block_on(async {
        for (i, chunk) in body.chunks(400).enumerate() {
            let part = format!("{header}\n{}\n", chunk.join("\n"));
            s3.put(
                &Key::from(format!("{prefix}/in/part-{i}.csv")),
                part.into_bytes().into(),
            )
            .await
            .expect("put part");
        }
        s3.put(
            &Key::from(format!("{prefix}/in/notes.txt")),
            b"notes".to_vec().into(),
        )
        .await
        .expect("put notes");
    });

    let output = format!("s3://{bucket}/{prefix}/out/scored.csv");
    cli_ok(&[
        "score",
        "churn/1",
        "--input",
        &format!("s3://{bucket}/{prefix}/in/"),
        "--output",
        &output,
    ]);
    let scored = runtime.block_on(async {
        let got = s3
            .get(&Key::from(format!("{prefix}/out/scored.csv")))
            .await
            .expect("the output was uploaded");
        String::from_utf8(got.bytes().await.expect("bytes").to_vec()).expect("utf-8")
    });
    let local = dir.path().join("scored.csv");
    std::fs::write(&local, scored).expect("write");
    let (_, rows) = read_csv(&local);
    let (_, expected) = read_csv(&fixtures().join("models/xgb_classifier.json.expected.csv"));
    assert_eq!(rows.len(), body.len(), "every row of the three parts");
    for (r, (row, want)) in rows.iter().zip(&expected).enumerate() {
        assert_eq!(row[0], r.to_string(), "parts in order");
        let (got, want): (f64, f64) = (row[3].parse().expect("p1"), want[2].parse().expect("p1"));
        assert!((got - want).abs() < 1e-6, "row {r}: {got} vs {want}");
    }

    // One object, and a pattern with a shard of it.
    let one = cli_ok(&[
        "score",
        "churn/1",
        "--input",
        &format!("s3://{bucket}/{prefix}/in/part-2.csv"),
    ]);
    assert_eq!(one.lines().count(), 1 + body.len() - 800);
    let shard = cli_ok(&[
        "score",
        "churn/1",
        "--input",
        &format!("s3://{bucket}/{prefix}/in/part-*.csv"),
        "--shard",
        "1/3",
    ]);
    assert_eq!(
        shard.lines().nth(1).and_then(|l| l.split(',').next()),
        Some("400")
    );
    assert_eq!(shard.lines().count(), 401);

    // Nothing there: named, exit code 2.
    let out = cli(&[
        "score",
        "churn/1",
        "--input",
        &format!("s3://{bucket}/{prefix}/nothing/"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no data files") && err.contains("nothing"),
        "{err}"
    );
}
